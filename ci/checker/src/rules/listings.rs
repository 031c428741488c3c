//! Rule: the listing tree is what the chapters and cargo expect.
//!
//! A listing is a crate under `listings/chNN-slug/listing-NN-MM/` that a
//! chapter includes and cargo builds and tests; its name is how a reader
//! finds it from "Listing NN-MM" in the text. This rule rejects a chapter
//! directory not named `chNN-slug`, a listing not named `listing-NN-MM` or
//! whose `NN` is not its chapter directory's, a listing without a
//! `Cargo.toml` or outside the workspace members (nothing would test it),
//! and an orphaned listing that no chapter includes (tested, but never
//! shown).

use std::path::PathBuf;

use super::Checker;
use crate::files::{file_name, subdirectories};

impl Checker {
    /// Checks the listing tree; returns the listing directories that are crates.
    pub(crate) fn check_listings(&mut self) -> Vec<PathBuf> {
        let listings_dir = self.root.join("listings");
        let mut listings = Vec::new();
        for chapter_dir in subdirectories(&listings_dir) {
            let chapter_name = file_name(&chapter_dir);
            let Some(chapter_number) = chapter_dir_number(&chapter_name) else {
                self.problem(
                    &chapter_dir,
                    None,
                    format!(
                        "`{chapter_name}` is not a listing chapter directory: name it chNN-slug (two-digit chapter number, lowercase words joined by `-`), e.g. ch01-getting-started"
                    ),
                );
                continue;
            };
            for listing in subdirectories(&chapter_dir) {
                let name = file_name(&listing);
                match listing_numbers(&name) {
                    None => self.problem(
                        &listing,
                        None,
                        format!(
                            "`{name}` is not a listing name: name it listing-NN-MM (NN = chapter number, MM = listing number in the chapter), e.g. listing-{chapter_number:02}-01"
                        ),
                    ),
                    Some((chapter, number)) if chapter != chapter_number => self.problem(
                        &listing,
                        None,
                        format!(
                            "`{name}` is under {chapter_name}, so its first number must be the chapter's: rename it listing-{chapter_number:02}-{number:02} (and update the chapter's include)"
                        ),
                    ),
                    Some(_) => {}
                }
                if !listing.join("Cargo.toml").is_file() {
                    self.problem(
                        &listing,
                        None,
                        "listing has no Cargo.toml: every listing is a crate that cargo builds and tests (`cargo new --vcs none <dir>`)",
                    );
                    continue;
                }
                if !self.members.contains(&listing) {
                    let rel = self.rel(&listing);
                    self.problem(
                        &listing,
                        None,
                        format!(
                            "listing is not a workspace member, so cargo never builds or tests it; add \"{rel}\" to [workspace] members in the root Cargo.toml (\"listings/*/*\" covers every listing)"
                        ),
                    );
                }
                if !self.included.iter().any(|file| file.starts_with(&listing)) {
                    self.problem(
                        &listing,
                        None,
                        "orphaned listing: no chapter includes it; show it in a chapter with a ```rust fence containing `{{#rustdoc_include ../../listings/<chapter>/<listing>/src/main.rs:<anchor>}}`, or delete it",
                    );
                }
                listings.push(listing);
            }
        }
        listings
    }
}

/// `NN` of a `chNN-slug` directory name.
pub fn chapter_dir_number(name: &str) -> Option<u32> {
    let rest = name.strip_prefix("ch")?;
    let (digits, slug) = (rest.get(..2)?, rest.get(2..)?);
    let slug = slug.strip_prefix('-')?;
    let slug_ok = !slug.is_empty()
        && slug.split('-').all(|word| {
            !word.is_empty()
                && word
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        });
    (digits.bytes().all(|b| b.is_ascii_digit()) && slug_ok).then(|| digits.parse().ok())?
}

/// `(NN, MM)` of a `listing-NN-MM` directory name.
pub fn listing_numbers(name: &str) -> Option<(u32, u32)> {
    let rest = name.strip_prefix("listing-")?;
    let (chapter, number) = rest.split_once('-')?;
    let two_digits = |s: &str| s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit());
    (two_digits(chapter) && two_digits(number))
        .then(|| Some((chapter.parse().ok()?, number.parse().ok()?)))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(chapter_dir_number("ch01-getting-started"), Some(1));
        assert_eq!(chapter_dir_number("ch12-x2"), Some(12));
        for bad in [
            "ch1-x",
            "ch01",
            "ch01-",
            "ch01-Getting",
            "ch01_x",
            "chap01-x",
            "ch01--x",
        ] {
            assert_eq!(chapter_dir_number(bad), None, "{bad}");
        }
        assert_eq!(listing_numbers("listing-01-02"), Some((1, 2)));
        for bad in [
            "listing-1-02",
            "listing-01-2",
            "listing-01",
            "listing-01-02-x",
            "Listing-01-02",
            "no-listing-01-02",
        ] {
            assert_eq!(listing_numbers(bad), None, "{bad}");
        }
    }
}
