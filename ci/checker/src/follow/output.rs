//! Checked output: a ```` ```console ```` fence right after the line
//! `<!-- output: checked -->` (blank lines allowed) shows exactly what its
//! commands print. The follower compares each command's output (stdout and
//! stderr, as a terminal interleaves them) with the lines the fence shows
//! after that `$ ` line, and fails at the command's line with a diff.
//!
//! Some things cannot be the same on every run, so both sides are
//! normalised before they are compared:
//!
//! - blank lines are dropped, trailing spaces trimmed, and runs of spaces
//!   become one (table columns are as wide as the values in them);
//! - words that change from run to run become placeholders: a UUID
//!   `<uuid>` (also inside a word, as in JSON: `{"id":"<uuid>"}`), a position `1045/17` `<position>`, a date `2026-12-06`
//!   `<date>`, a time `12:26:09` (with a fraction or an offset) `<time>`, a
//!   duration `3s` / `1.5s` / `12ms` `<duration>`;
//! - a shown line that is exactly `...` stands for any number of lines
//!   (none included), and a shown line ending in `...` stands for any line
//!   that starts with what comes before the dots.

/// The line that opts the next console fence in.
pub(crate) const MARKER: &str = "<!-- output: checked -->";

/// Compares what a command printed with what the chapter shows; `Err` is
/// a message with both, normalised, as a diff.
pub(crate) fn compare(shown: &[String], actual: &str) -> Result<(), String> {
    let shown: Vec<String> = shown.iter().filter_map(|line| normalise(line)).collect();
    let actual: Vec<String> = actual.lines().filter_map(normalise).collect();
    if matches(&shown, &actual) {
        return Ok(());
    }
    let mut diff = String::from(
        "printed other output than the chapter shows (after normalising; see \
         ci/checker/src/follow/output.rs); the chapter shows (-) and the command printed (+):\n",
    );
    for line in &shown {
        diff.push_str(&format!("- {line}\n"));
    }
    for line in &actual {
        diff.push_str(&format!("+ {line}\n"));
    }
    Err(diff)
}

/// Whether `actual` matches the pattern lines `shown` (with `...` lines
/// and `...` line ends).
fn matches(shown: &[String], actual: &[String]) -> bool {
    match shown.split_first() {
        None => actual.is_empty(),
        Some((first, rest)) if first == "..." => {
            (0..=actual.len()).any(|skip| matches(rest, &actual[skip..]))
        }
        Some((first, rest)) => actual.split_first().is_some_and(|(line, after)| {
            let same = match first.strip_suffix("...") {
                Some(start) => line.starts_with(start.trim_end()),
                None => line == first,
            };
            same && matches(rest, after)
        }),
    }
}

/// A line as compared, or `None` for a blank one.
fn normalise(line: &str) -> Option<String> {
    let line = uuids_replaced(line);
    let words: Vec<&str> = line.split_whitespace().collect();
    if words.is_empty() {
        return None;
    }
    Some(
        words
            .into_iter()
            .map(placeholder)
            .collect::<Vec<_>>()
            .join(" "),
    )
}

/// The placeholder of a word that changes from run to run, or the word.
fn placeholder(word: &str) -> String {
    // Punctuation around a value (`(1045/17)`, `12:26:09,`) stays.
    let start = word.find(|c: char| c.is_ascii_alphanumeric()).unwrap_or(0);
    let end = word
        .rfind(|c: char| c.is_ascii_alphanumeric())
        .map_or(word.len(), |i| i + 1);
    if start >= end {
        return word.to_owned();
    }
    let core = &word[start..end];
    // UUIDs are already placeholders: `uuids_replaced` finds them inside
    // words too, before the line is split.
    let replaced = if is_position(core) {
        "<position>"
    } else if is_date(core) {
        "<date>"
    } else if is_time(core) {
        "<time>"
    } else if is_duration(core) {
        "<duration>"
    } else {
        return word.to_owned();
    };
    format!("{}{replaced}{}", &word[..start], &word[end..])
}

/// `line` with every UUID in it, inside a word too (`{"id":"…"}`), made
/// `<uuid>`; a UUID is 36 characters that [`is_uuid`], not next to another
/// hex digit or `-`.
fn uuids_replaced(line: &str) -> String {
    const LEN: usize = 36;
    let bytes = line.as_bytes();
    let part_of_uuid = |b: u8| b.is_ascii_hexdigit() || b == b'-';
    let mut out = String::with_capacity(line.len());
    let mut copied = 0;
    let mut i = 0;
    while i + LEN <= bytes.len() {
        let alone = (i == 0 || !part_of_uuid(bytes[i - 1]))
            && bytes.get(i + LEN).is_none_or(|&b| !part_of_uuid(b));
        if alone && line.is_char_boundary(i) && line.is_char_boundary(i + LEN) {
            let candidate = &line[i..i + LEN];
            if is_uuid(candidate) {
                out.push_str(&line[copied..i]);
                out.push_str("<uuid>");
                i += LEN;
                copied = i;
                continue;
            }
        }
        i += 1;
    }
    out.push_str(&line[copied..]);
    out
}

fn digits(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

fn is_uuid(word: &str) -> bool {
    let groups: Vec<&str> = word.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(group, len)| group.len() == len && group.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn is_position(word: &str) -> bool {
    word.split_once('/')
        .is_some_and(|(commit, sequence)| digits(commit) && digits(sequence))
}

fn is_date(word: &str) -> bool {
    let parts: Vec<&str> = word.split('-').collect();
    parts.len() == 3
        && parts
            .iter()
            .zip([4, 2, 2])
            .all(|(part, len)| part.len() == len && digits(part))
}

fn is_time(word: &str) -> bool {
    // `12:26:09`, `12:26:09.123`, `12:26:09+00:00`, `12:26:09Z`.
    let clock = word.split(['.', '+', 'Z']).next().unwrap_or_default();
    let parts: Vec<&str> = clock.split(':').collect();
    parts.len() == 3 && parts.iter().all(|part| part.len() == 2 && digits(part))
}

fn is_duration(word: &str) -> bool {
    let number = word.strip_suffix("ms").or_else(|| word.strip_suffix('s'));
    number.is_some_and(|n| {
        let (whole, fraction) = n.split_once('.').unwrap_or((n, "0"));
        digits(whole) && digits(fraction)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::to_owned).collect()
    }

    #[test]
    fn values_that_change_become_placeholders() {
        assert_eq!(
            normalise(
                "  9194/5    account-2  2   Deposited  2026-12-06 12:26:09  {\"amount\":300}  "
            )
            .unwrap(),
            "<position> account-2 2 Deposited <date> <time> {\"amount\":300}"
        );
        assert_eq!(
            normalise("event 01936d2c-0000-7000-8000-000000000404 (at 1045/17), took 1.5s or 12ms")
                .unwrap(),
            "event <uuid> (at <position>), took <duration> or <duration>"
        );
        assert_eq!(
            normalise("2026-12-06T12:26:09Z").unwrap(),
            "2026-12-06T12:26:09Z"
        );
        assert_eq!(
            normalise(r#"{"id":"01936d2c-0000-7000-8000-000000000404","total":5000}"#).unwrap(),
            r#"{"id":"<uuid>","total":5000}"#
        );
        assert_eq!(
            normalise("x-request-id: 1f0c2d3e-0000-4000-8000-00000000000a").unwrap(),
            "x-request-id: <uuid>"
        );
        // Longer hex runs are not UUIDs.
        assert_eq!(
            normalise("f01936d2c-0000-7000-8000-000000000404").unwrap(),
            "f01936d2c-0000-7000-8000-000000000404"
        );
        assert_eq!(normalise("   "), None);
        // Not values: versions, words, amounts.
        assert_eq!(
            normalise("v2 account-1 s 100").unwrap(),
            "v2 account-1 s 100"
        );
    }

    #[test]
    fn same_output_with_other_values_and_widths_matches() {
        let shown =
            lines("STREAM     VERSION  LAST EVENT\naccount-1  4        2026-12-06 12:26:09\n");
        let actual =
            "STREAM       VERSION  LAST EVENT\naccount-1    4        2027-01-01 01:02:03\n\n";
        assert_eq!(compare(&shown, actual), Ok(()));
    }

    #[test]
    fn other_output_fails_with_a_diff() {
        let shown = lines("balance 90\n");
        let error = compare(&shown, "balance 95\n").unwrap_err();
        assert!(error.contains("- balance 90\n+ balance 95\n"), "{error}");
        assert!(compare(&shown, "").is_err());
        assert!(compare(&shown, "balance 90\nmore\n").is_err());
    }

    #[test]
    fn ellipses_stand_for_lines_and_line_ends() {
        let shown = lines("first\n...\nlast line ...\n");
        assert_eq!(compare(&shown, "first\nlast line and more\n"), Ok(()));
        assert_eq!(compare(&shown, "first\na\nb\nlast line, cut\n"), Ok(()));
        assert!(compare(&shown, "first\na\n").is_err());
        assert!(compare(&shown, "other\nlast line\n").is_err());
    }
}
