#[cfg(test)]
mod tests {
    //! Every requirement id the code cites (`D-07`, `E-24`, ...) must be
    //! explained in docs/requirements.md. The ids come from a standards list
    //! kept outside the repository, so without this check a new citation
    //! could leave readers with an id that nothing here explains.

    use std::collections::{BTreeMap, BTreeSet};
    use std::path::{Path, PathBuf};

    use regex_lite::Regex;

    /// The folders whose comments, test messages, SQL and scripts cite ids.
    /// `fuzz/` is left out: its corpora are random bytes, not citations.
    const CITING: [&str; 6] = [
        "src",
        "tests",
        "migrations",
        "templates",
        "email_templates",
        "bench",
    ];

    /// Every file under `dir`, however deep.
    fn files(dir: &Path, found: &mut Vec<PathBuf>) {
        // A folder that is missing cites nothing; the count check below still
        // fails if the scan finds too few ids.
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries {
            let path = entry.expect("a readable directory entry").path();
            if path.is_dir() {
                files(&path, found);
            } else {
                found.push(path);
            }
        }
    }

    /// Each cited id, with the first file that cites it (to say where to look).
    fn cited(root: &Path) -> BTreeMap<String, PathBuf> {
        // A capital, a hyphen and two digits, as a whole word: this skips
        // `SHA-256`, `RUSTSEC-2023-…` and `C-673/17`.
        let id = Regex::new(r"\b[A-Z]-[0-9]{2}\b").expect("a valid pattern");
        let mut paths = Vec::new();
        for folder in CITING {
            files(&root.join(folder), &mut paths);
        }
        paths.sort();
        let mut cited = BTreeMap::new();
        for path in paths {
            let bytes = std::fs::read(&path).expect("a readable file");
            // Lossy, so a file that is not UTF-8 is still read instead of failing.
            let text = String::from_utf8_lossy(&bytes);
            let relative = path.strip_prefix(root).unwrap_or(path.as_path());
            for found in id.find_iter(&text) {
                cited
                    .entry(found.as_str().to_owned())
                    .or_insert_with(|| relative.to_owned());
            }
        }
        cited
    }

    /// The ids docs/requirements.md defines: lines starting `- **X-NN**`.
    fn defined(doc: &str) -> BTreeSet<String> {
        let entry = Regex::new(r"(?m)^- \*\*([A-Z]-[0-9]{2})\*\*").expect("a valid pattern");
        entry
            .captures_iter(doc)
            .map(|captures| captures[1].to_owned())
            .collect()
    }

    #[test]
    fn every_cited_requirement_id_is_defined_in_docs_requirements_md() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let cited = cited(root);
        // Dozens are cited; finding only a few means the scan is broken, and
        // an empty scan would pass whatever the doc says.
        assert!(
            cited.len() >= 20,
            "only {} requirement ids found under {CITING:?}: {:?}",
            cited.len(),
            cited.keys().collect::<Vec<_>>()
        );
        let doc = std::fs::read_to_string(root.join("docs/requirements.md"))
            .expect("docs/requirements.md exists");
        let defined = defined(&doc);
        let missing: Vec<String> = cited
            .iter()
            .filter(|(id, _)| !defined.contains(*id))
            .map(|(id, path)| format!("{id} (cited in {})", path.display()))
            .collect();
        assert!(
            missing.is_empty(),
            "cited but without a `- **X-NN**` line in docs/requirements.md: {missing:?}"
        );
    }

    #[test]
    fn only_entry_lines_define_ids() {
        let doc = "Prose citing D-07 defines nothing.\n\
                   - **D-06** An entry.\n\
                   -  **D-08** A typo is not an entry.\n";
        assert_eq!(defined(doc), BTreeSet::from(["D-06".to_owned()]));
    }
}
