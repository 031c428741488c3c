// The search probe of `book-checker browser`: evaluated in a page opened as
// `index.html?search=TERM`, which makes mdBook's search run TERM. Resolves
// (up to timeoutMs later) to the results' header and link targets.
async (timeoutMs) => {
    const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
    const header = () => document.getElementById('searchresults-header');
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
        const h = header();
        if (h && h.textContent.trim() !== '') {
            break;
        }
        await sleep(50);
    }
    const h = header();
    return {
        header: h ? h.textContent.trim() : null,
        links: Array.from(document.querySelectorAll('#searchresults a[href]')).map((a) => a.href),
    };
}
