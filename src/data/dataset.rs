//! Labelled single sentences or sentence pairs, read from JSONL, TSV or CSV.

use crate::error::{GmsError, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// One labelled row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Example {
    /// The sentence (or the first of a pair).
    pub text: String,
    /// The second sentence of a pair.
    pub text_pair: Option<String>,
    /// Integer class label.
    pub label: usize,
    /// 1-based line in the source file (0 for rows made in memory).
    pub line: usize,
}

/// A labelled set read from a file.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Where it came from (for messages).
    pub path: PathBuf,
    /// Its rows, in file order.
    pub examples: Vec<Example>,
}

const TEXT_KEYS: [&str; 2] = ["sentence", "text"];
const PAIR_KEYS: [(&str, &str); 2] = [("sentence1", "sentence2"), ("premise", "hypothesis")];

impl Dataset {
    /// Reads a dataset, choosing the format by extension (`.jsonl`/`.json`/`.ndjson`, `.tsv`,
    /// `.csv`). Rejects empty sets and malformed rows, naming the file and line.
    pub fn read(path: &Path) -> Result<Dataset> {
        let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => GmsError::Missing {
                path: path.to_path_buf(),
                what: "dataset",
                fix: "check the path",
            },
            _ => GmsError::bad_file(path, e.to_string(), "the file must be readable UTF-8 text"),
        })?;
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        let examples = match ext.as_str() {
            "jsonl" | "json" | "ndjson" => read_json(path, &text)?,
            "tsv" => read_delimited(path, &text, b'\t')?,
            "csv" => read_delimited(path, &text, b',')?,
            _ => {
                return Err(GmsError::bad_file(
                    path,
                    format!("unknown dataset format \"{ext}\""),
                    "use .jsonl/.json, .tsv or .csv",
                ))
            }
        };
        if examples.is_empty() {
            return Err(GmsError::bad_file(
                path,
                "the dataset has no rows",
                "give a file with at least one labelled row",
            ));
        }
        Ok(Dataset {
            path: path.to_path_buf(),
            examples,
        })
    }

    /// A dataset made in memory (`path` is only used in messages).
    pub fn from_examples(path: impl Into<PathBuf>, examples: Vec<Example>) -> Dataset {
        Dataset {
            path: path.into(),
            examples,
        }
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.examples.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.examples.is_empty()
    }

    /// Fails on the first label a model with `num_labels` outputs cannot predict.
    pub fn check_labels(&self, num_labels: usize) -> Result<()> {
        match self.examples.iter().find(|e| e.label >= num_labels) {
            Some(e) => Err(GmsError::BadRow {
                path: self.path.clone(),
                line: e.line,
                problem: format!(
                    "label {} is out of range: the model has {num_labels} labels (0..{})",
                    e.label,
                    num_labels - 1
                ),
            }),
            None => Ok(()),
        }
    }

    /// Writes the rows as JSONL (`sentence`/`label`, or `sentence1`/`sentence2`/`label`),
    /// atomically.
    pub fn write_jsonl(&self, path: &Path) -> Result<()> {
        let mut out = String::new();
        for e in &self.examples {
            let v = match &e.text_pair {
                None => serde_json::json!({"sentence": e.text, "label": e.label}),
                Some(p) => {
                    serde_json::json!({"sentence1": e.text, "sentence2": p, "label": e.label})
                }
            };
            out.push_str(&v.to_string());
            out.push('\n');
        }
        crate::atomic::write_file(path, out.as_bytes())
    }
}

fn bad_row(path: &Path, line: usize, problem: impl Into<String>) -> GmsError {
    GmsError::BadRow {
        path: path.to_path_buf(),
        line,
        problem: problem.into(),
    }
}

fn parse_label(path: &Path, line: usize, v: Option<&Value>) -> Result<usize> {
    let label = match v {
        Some(Value::Number(n)) => n.as_u64().map(|n| n as usize),
        Some(Value::String(s)) => s.trim().parse::<usize>().ok(),
        Some(Value::Bool(b)) => Some(*b as usize),
        _ => None,
    };
    label.ok_or_else(|| match v {
        None | Some(Value::Null) => bad_row(path, line, "missing \"label\""),
        Some(other) => bad_row(
            path,
            line,
            format!("label {other} is not a non-negative integer class id"),
        ),
    })
}

fn example_from_fields(
    path: &Path,
    line: usize,
    field: impl Fn(&str) -> Option<String>,
    label: Option<&Value>,
) -> Result<Example> {
    let label = parse_label(path, line, label)?;
    for (a, b) in PAIR_KEYS {
        if let (Some(x), Some(y)) = (field(a), field(b)) {
            return Ok(Example {
                text: x,
                text_pair: Some(y),
                label,
                line,
            });
        }
    }
    let text = TEXT_KEYS.iter().find_map(|k| field(k)).ok_or_else(|| {
        bad_row(
            path,
            line,
            "no text: expected \"sentence\" or \"text\" (or sentence1/sentence2, premise/hypothesis)",
        )
    })?;
    Ok(Example {
        text,
        text_pair: None,
        label,
        line,
    })
}

fn json_row(path: &Path, line: usize, v: &Value) -> Result<Example> {
    let obj = v
        .as_object()
        .ok_or_else(|| bad_row(path, line, "a row must be a JSON object"))?;
    let field = |k: &str| obj.get(k).and_then(Value::as_str).map(str::to_string);
    example_from_fields(path, line, field, obj.get("label"))
}

fn read_json(path: &Path, text: &str) -> Result<Vec<Example>> {
    if text.trim_start().starts_with('[') {
        let rows: Vec<Value> = serde_json::from_str(text)
            .map_err(|e| bad_row(path, e.line(), format!("invalid JSON array ({e})")))?;
        return rows
            .iter()
            .enumerate()
            .map(|(i, v)| json_row(path, i + 1, v))
            .collect();
    }
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        if raw.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(raw)
            .map_err(|e| bad_row(path, i + 1, format!("invalid JSON ({e})")))?;
        out.push(json_row(path, i + 1, &v)?);
    }
    Ok(out)
}

fn read_delimited(path: &Path, text: &str, delimiter: u8) -> Result<Vec<Example>> {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .quoting(delimiter == b',')
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| bad_row(path, 1, format!("unreadable header ({e})")))?
        .clone();
    let col = |k: &str| headers.iter().position(|h| h.trim() == k);
    if col("label").is_none() {
        return Err(bad_row(path, 1, "the header has no \"label\" column"));
    }
    let mut out = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map(|p| p.line() as usize).unwrap_or(0);
            bad_row(path, line, format!("unreadable row ({e})"))
        })?;
        let line = record.position().map(|p| p.line() as usize).unwrap_or(0);
        let field = |k: &str| col(k).and_then(|i| record.get(i)).map(str::to_string);
        let label = field("label").map(Value::String);
        out.push(example_from_fields(path, line, field, label.as_ref())?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, body: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, body).unwrap();
        p
    }

    #[test]
    fn reads_all_formats() {
        let dir = tempfile::tempdir().unwrap();
        let j = write(
            dir.path(),
            "a.jsonl",
            "{\"sentence\":\"good\",\"label\":1}\n\n{\"text\":\"bad\",\"label\":\"0\"}\n",
        );
        let d = Dataset::read(&j).unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(d.examples[1].text, "bad");
        assert_eq!(d.examples[1].line, 3);
        let t = write(
            dir.path(),
            "a.tsv",
            "sentence\tlabel\na \"quoted\" one\t1\n",
        );
        assert_eq!(
            Dataset::read(&t).unwrap().examples[0].text,
            "a \"quoted\" one"
        );
        let c = write(
            dir.path(),
            "a.csv",
            "premise,hypothesis,label\n\"x, y\",z,2\n",
        );
        let e = &Dataset::read(&c).unwrap().examples[0];
        assert_eq!(
            (e.text.as_str(), e.text_pair.as_deref(), e.label),
            ("x, y", Some("z"), 2)
        );
    }

    #[test]
    fn rejects_bad_rows_with_line() {
        let dir = tempfile::tempdir().unwrap();
        let j = write(
            dir.path(),
            "a.jsonl",
            "{\"sentence\":\"good\",\"label\":1}\n{\"sentence\":\"x\"\n",
        );
        let msg = Dataset::read(&j).unwrap_err().to_string();
        assert!(msg.contains("a.jsonl:2:"), "{msg}");
        let e = write(dir.path(), "e.jsonl", "\n");
        assert!(Dataset::read(&e)
            .unwrap_err()
            .to_string()
            .contains("no rows"));
        let l = write(
            dir.path(),
            "l.jsonl",
            "{\"sentence\":\"good\",\"label\":\"pos\"}\n",
        );
        assert!(Dataset::read(&l)
            .unwrap_err()
            .to_string()
            .contains("l.jsonl:1: label"));
        let r = write(
            dir.path(),
            "r.jsonl",
            "{\"sentence\":\"a\",\"label\":0}\n{\"sentence\":\"b\",\"label\":7}\n",
        );
        let err = Dataset::read(&r)
            .unwrap()
            .check_labels(2)
            .unwrap_err()
            .to_string();
        assert!(err.contains("r.jsonl:2: label 7 is out of range"), "{err}");
    }
}
