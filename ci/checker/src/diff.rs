//! A small line diff (longest common subsequence) for showing stale output.

/// One line of a diff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op<'a> {
    Same(&'a str),
    Removed(&'a str),
    Added(&'a str),
}

/// Above this many lines on either side the diff falls back to showing both
/// texts whole (the LCS table is quadratic).
const MAX_LINES: usize = 2_000;

/// Lines of context kept around each change.
const CONTEXT: usize = 2;

/// A unified-style diff from `expected` to `actual`; empty when they are equal.
pub fn unified(expected: &str, actual: &str, expected_name: &str, actual_name: &str) -> String {
    if expected == actual {
        return String::new();
    }
    let mut out = format!("--- {expected_name}\n+++ {actual_name}\n");
    let old: Vec<&str> = expected.lines().collect();
    let new: Vec<&str> = actual.lines().collect();
    if old == new {
        out.push_str(&format!(
            "(the lines are equal; only line endings differ: {} ends {}, {} ends {})\n",
            expected_name,
            ending(expected),
            actual_name,
            ending(actual)
        ));
        return out;
    }
    if old.len() > MAX_LINES || new.len() > MAX_LINES {
        for line in &old {
            out.push_str(&format!("-{line}\n"));
        }
        for line in &new {
            out.push_str(&format!("+{line}\n"));
        }
        return out;
    }
    let ops = lcs_ops(&old, &new);
    // Keep changed lines and CONTEXT lines around them.
    let keep: Vec<bool> = (0..ops.len())
        .map(|i| {
            let lo = i.saturating_sub(CONTEXT);
            let hi = (i + CONTEXT + 1).min(ops.len());
            ops[lo..hi].iter().any(|op| !matches!(op, Op::Same(_)))
        })
        .collect();
    let (mut old_line, mut new_line) = (1, 1);
    let mut in_hunk = false;
    for (op, keep) in ops.iter().zip(keep) {
        if keep && !in_hunk {
            out.push_str(&format!(
                "@@ expected line {old_line}, actual line {new_line} @@\n"
            ));
        }
        in_hunk = keep;
        match op {
            Op::Same(line) => {
                if keep {
                    out.push_str(&format!(" {line}\n"));
                }
                old_line += 1;
                new_line += 1;
            }
            Op::Removed(line) => {
                out.push_str(&format!("-{line}\n"));
                old_line += 1;
            }
            Op::Added(line) => {
                out.push_str(&format!("+{line}\n"));
                new_line += 1;
            }
        }
    }
    out
}

fn ending(text: &str) -> &'static str {
    if text.ends_with("\r\n") {
        "with CRLF"
    } else if text.ends_with('\n') {
        "with a newline"
    } else {
        "without a newline"
    }
}

fn lcs_ops<'a>(old: &[&'a str], new: &[&'a str]) -> Vec<Op<'a>> {
    let (n, m) = (old.len(), new.len());
    // table[i][j] = LCS length of old[i..] and new[j..]
    let mut table = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            table[i][j] = if old[i] == new[j] {
                table[i + 1][j + 1] + 1
            } else {
                table[i + 1][j].max(table[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut ops = Vec::with_capacity(n + m);
    while i < n || j < m {
        if i < n && j < m && old[i] == new[j] {
            ops.push(Op::Same(old[i]));
            i += 1;
            j += 1;
        } else if i < n && (j == m || table[i + 1][j] >= table[i][j + 1]) {
            ops.push(Op::Removed(old[i]));
            i += 1;
        } else {
            ops.push(Op::Added(new[j]));
            j += 1;
        }
    }
    ops
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_is_empty() {
        assert_eq!(unified("a\nb\n", "a\nb\n", "x", "y"), "");
    }

    #[test]
    fn shows_changes_with_context() {
        let diff = unified(
            "1\n2\n3\n4\n5\n6\n7\n",
            "1\n2\n3\nfour\n5\n6\n7\n",
            "old",
            "new",
        );
        assert_eq!(
            diff,
            "--- old\n+++ new\n@@ expected line 2, actual line 2 @@\n 2\n 3\n-4\n+four\n 5\n 6\n"
        );
    }

    #[test]
    fn trailing_newline() {
        assert!(unified("a\n", "a", "x", "y").contains("only line endings differ"));
    }
}
