//! How the commands print: `--format table` (aligned columns for people)
//! or `--format json` (one JSON document for scripts), timestamps in UTC to
//! the second, and progress bars on stderr for walks of many events.

use std::io::{IsTerminal, Write};

use chrono::{DateTime, Utc};
use clap::ValueEnum;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use super::error::OpsError;

/// The output format of a listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Format {
    /// Aligned columns.
    #[default]
    Table,
    /// One JSON document.
    Json,
}

/// Writes `value` as pretty JSON and a newline.
pub(crate) fn json(out: &mut dyn Write, value: &impl Serialize) -> Result<(), OpsError> {
    serde_json::to_writer_pretty(&mut *out, value)
        .map_err(|error| OpsError::write(error.into()))?;
    writeln!(out).map_err(OpsError::write)
}

/// Writes a line.
pub(crate) fn line(out: &mut dyn Write, text: &str) -> Result<(), OpsError> {
    writeln!(out, "{text}").map_err(OpsError::write)
}

/// A table: a header and rows, printed with each column as wide as its
/// widest cell, two spaces apart.
#[derive(Debug)]
pub(crate) struct Table {
    header: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column names.
    pub(crate) fn new(header: Vec<&'static str>) -> Self {
        Self {
            header,
            rows: Vec::new(),
        }
    }

    /// Adds a row (one cell per column).
    pub(crate) fn row(&mut self, cells: Vec<String>) {
        debug_assert_eq!(cells.len(), self.header.len());
        self.rows.push(cells);
    }

    /// Prints the table, or `empty` when it has no rows.
    pub(crate) fn print(&self, out: &mut dyn Write, empty: &str) -> Result<(), OpsError> {
        if self.rows.is_empty() {
            return line(out, empty);
        }
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let header: Vec<String> = self.header.iter().map(|h| (*h).to_owned()).collect();
        for row in std::iter::once(&header).chain(&self.rows) {
            let mut text = String::new();
            for (i, (cell, width)) in row.iter().zip(&widths).enumerate() {
                if i + 1 == row.len() {
                    // No padding after the last column.
                    text.push_str(cell);
                } else {
                    text.push_str(&format!("{cell:width$}  "));
                }
            }
            line(out, &text)?;
        }
        Ok(())
    }
}

/// A time as printed in tables: UTC, to the second.
pub(crate) fn time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// `text` cut to `max` characters, with `…` when cut.
pub(crate) fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// A progress bar over `total` events on stderr, hidden unless stdout is
/// a terminal and the format is a table (a script reading JSON, or output
/// piped to a file, gets no bar drawn over it).
pub(crate) fn progress(total: u64, format: Format, what: &'static str) -> ProgressBar {
    if format == Format::Json || !std::io::stdout().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    if let Ok(style) =
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} events ({eta} left)")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what);
    bar
}

/// A progress bar like [`progress`] for work another process does (a
/// blue/green rebuild, polled): the rate and ETA come from how fast the
/// position moves between polls. Its length is set as the total is
/// learnt.
pub(crate) fn rate_progress(total: u64, format: Format, what: String) -> ProgressBar {
    if format == Format::Json || !std::io::stdout().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    if let Ok(style) =
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} events ({per_sec}, {eta} left)")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what);
    bar
}
