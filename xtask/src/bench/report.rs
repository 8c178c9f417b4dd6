//! The bench's one table (stdout, Markdown so it can go in the README as is) and its JSON twin.

use std::path::Path;

use anyhow::{Context as _, Result};
use serde_json::{Value, json};

/// One section of the table: its own columns, rows, and notes printed under it.
pub struct Section {
    pub title: String,
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
    pub notes: Vec<String>,
    /// The same figures, unrounded, for `results.json`.
    pub json: Value,
}

pub struct Report {
    pub machine: String,
    pub method: Vec<String>,
    pub skipped: Vec<String>,
    pub sections: Vec<Section>,
}

impl Report {
    pub fn markdown(&self) -> String {
        let mut out = format!("Machine: {}\n\n", self.machine);
        for line in &self.method {
            out.push_str(&format!("{line}\n"));
        }
        if !self.skipped.is_empty() {
            out.push_str(&format!("\nSkipped: {}\n", self.skipped.join("; ")));
        }
        for section in &self.sections {
            out.push_str(&format!("\n**{}**\n\n", section.title));
            out.push_str(&row(&section.header));
            out.push_str(&row(&section
                .header
                .iter()
                .map(|_| "---".to_owned())
                .collect::<Vec<_>>()));
            for r in &section.rows {
                out.push_str(&row(r));
            }
            if !section.notes.is_empty() {
                out.push('\n');
                for note in &section.notes {
                    out.push_str(&format!("{note}\n"));
                }
            }
        }
        out
    }

    pub fn write_json(&self, path: &Path) -> Result<()> {
        let sections: Vec<Value> = self
            .sections
            .iter()
            .map(|s| json!({ "title": s.title, "notes": s.notes, "results": s.json }))
            .collect();
        let value = json!({
            "machine": self.machine,
            "method": self.method,
            "skipped": self.skipped,
            "sections": sections,
        });
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        // Written aside and renamed, so an interrupted bench never leaves half a file.
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_string_pretty(&value)? + "\n")
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
    }
}

fn row(cells: &[String]) -> String {
    format!("| {} |\n", cells.join(" | "))
}
