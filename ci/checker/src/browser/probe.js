// The page probe of `book-checker browser`, evaluated in every page of the
// built book once it has loaded: `(PROBE)(timeoutMs)` resolves to a JSON
// description of the page's diagrams and admonitions, which the checker
// (ci/checker/src/browser/mod.rs) turns into problems. Mermaid renders in
// the browser after the load event, so the probe waits (up to timeoutMs)
// until every diagram has been processed.
async (timeoutMs) => {
    const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
    const diagrams = () => Array.from(document.querySelectorAll('pre.mermaid, div.mermaid'));
    const processed = (el) =>
        el.getAttribute('data-processed') === 'true' || el.querySelector('svg') !== null;
    const deadline = Date.now() + timeoutMs;
    let waited = false;
    while (!diagrams().every(processed) && Date.now() < deadline) {
        waited = true;
        // The book's scripts run before the load event: without mermaid.js
        // by now, nothing will ever render them.
        if (typeof window.mermaid === 'undefined') {
            break;
        }
        await sleep(50);
    }

    // The id of the last heading before `el`, to say where on the page it is.
    const headings = Array.from(document.querySelectorAll('main :is(h1, h2, h3, h4, h5, h6)[id]'));
    const where = (el) => {
        let last = null;
        for (const heading of headings) {
            if (heading.compareDocumentPosition(el) & Node.DOCUMENT_POSITION_FOLLOWING) {
                last = heading;
            } else {
                break;
            }
        }
        return last ? '#' + last.id : '';
    };
    const firstLine = (text) => (text || '').trim().split('\n')[0].trim().slice(0, 80);
    const transparent = (color) => !color || color === 'transparent' || color === 'rgba(0, 0, 0, 0)';

    // The diagram's source, kept by the checker's start-up script before
    // mermaid replaced it (cdp.rs, ON_NEW_DOCUMENT).
    const sourceOf = (el) => el.dataset.bookCheckerSource || el.textContent || '';
    const mermaid = [];
    for (const el of diagrams()) {
        const svg = el.querySelector('svg');
        // Mermaid draws a "Syntax error in text" bomb for a diagram it
        // cannot parse.
        const error = svg !== null &&
            (svg.getAttribute('aria-roledescription') === 'error' ||
                svg.querySelector('.error-icon, .error-text') !== null);
        let parseError = '';
        if (error && typeof window.mermaid !== 'undefined') {
            try {
                await window.mermaid.parse(sourceOf(el));
            } catch (e) {
                parseError = String((e && e.message) || e).trim().split('\n').slice(0, 4).join(' | ');
            }
        }
        mermaid.push({
            at: where(el),
            processed: processed(el),
            svg: svg !== null,
            error,
            parseError,
            empty: svg !== null && svg.querySelector('g, path, text, rect') === null,
            source: firstLine(sourceOf(el)),
        });
    }

    const admonitions = Array.from(document.querySelectorAll('.admonition')).map((el) => {
        const style = getComputedStyle(el);
        const border = parseFloat(style.borderInlineStartWidth || style.borderLeftWidth) || 0;
        const title = el.querySelector(':scope > .admonition-title, :scope > summary.admonition-title');
        const titleBackground = title ? getComputedStyle(title).backgroundColor : '';
        const kind = Array.from(el.classList).find((c) => c.startsWith('admonish-')) || 'admonition';
        return {
            at: el.id ? '#' + el.id : where(el),
            kind,
            border,
            titleBackground,
            styled: border > 0 && (title === null || !transparent(titleBackground)),
        };
    });

    // Fences a preprocessor should have replaced but did not.
    const raw = (language) =>
        Array.from(document.querySelectorAll('code.language-' + language)).map((el) => ({
            at: where(el),
            source: firstLine(el.textContent),
        }));

    return {
        title: document.title,
        mermaidLoaded: typeof window.mermaid !== 'undefined',
        waited,
        mermaid,
        admonitions,
        rawMermaid: raw('mermaid'),
        rawAdmonish: raw('admonish'),
    };
}
