//! The messages `satchel spam train` and `spam score` read: an mbox file,
//! a Maildir, or a folder of message files (subfolders included), with
//! symbolic links followed, and every file left out counted by reason so
//! that a run can say what it did.

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use anyhow::Context;
use store::MAX_MESSAGE_SIZE;

use crate::formats::mbox;

/// Folders below the one given, at most (links can make a walk endless;
/// folders met twice are left out too).
const MAX_DEPTH: usize = 16;

/// Messages, one at a time, from what a path names.
pub struct Corpus {
    source: Source,
    /// What was left out, by reason: how many, and the first such path.
    skipped: BTreeMap<&'static str, (usize, PathBuf)>,
}

enum Source {
    Mbox {
        /// It counts the messages it skips for size itself.
        reader: mbox::Reader<BufReader<File>>,
        path: PathBuf,
    },
    Files(std::vec::IntoIter<PathBuf>),
}

impl Corpus {
    /// Opens `path`: a file is read as mbox; a folder with `cur` or `new`
    /// as a Maildir; any other folder as message files, walked with its
    /// subfolders. Links to files and folders are followed.
    pub fn open(path: &Path) -> anyhow::Result<Corpus> {
        let meta = std::fs::metadata(path).with_context(|| {
            format!(
                "cannot read {}: give an mbox file, a Maildir or a folder of message files",
                path.display()
            )
        })?;
        let mut corpus = Corpus {
            source: Source::Files(Vec::new().into_iter()),
            skipped: BTreeMap::new(),
        };
        if meta.is_file() {
            let file =
                File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
            corpus.source = Source::Mbox {
                reader: mbox::Reader::new(BufReader::new(file), MAX_MESSAGE_SIZE as usize),
                path: path.to_path_buf(),
            };
            return Ok(corpus);
        }
        let mut files = Vec::new();
        if path.join("cur").is_dir() || path.join("new").is_dir() {
            // A Maildir's messages are in cur and new; tmp is unfinished.
            for sub in ["cur", "new"] {
                corpus.walk(&path.join(sub), MAX_DEPTH, &mut HashSet::new(), &mut files);
            }
        } else {
            corpus.walk(path, MAX_DEPTH, &mut HashSet::new(), &mut files);
        }
        files.sort();
        corpus.source = Source::Files(files.into_iter());
        Ok(corpus)
    }

    /// The next message, or an error reading one.
    pub fn next_message(&mut self) -> Option<anyhow::Result<Vec<u8>>> {
        loop {
            match &mut self.source {
                Source::Mbox { reader, path } => {
                    return reader.next().map(|item| {
                        item.map(|i| i.raw)
                            .with_context(|| format!("cannot read {}", path.display()))
                    });
                }
                Source::Files(files) => {
                    let path = files.next()?;
                    let raw = match std::fs::read(&path) {
                        Ok(raw) => raw,
                        Err(e) => {
                            return Some(
                                Err(e).with_context(|| format!("cannot read {}", path.display())),
                            );
                        }
                    };
                    if !looks_like_a_message(&raw) {
                        self.skip("not a message (no header field on the first line)", &path);
                        continue;
                    }
                    return Some(Ok(raw));
                }
            }
        }
    }

    /// How many were left out.
    pub fn skipped(&self) -> usize {
        self.left_out().map(|(_, n, _)| n).sum()
    }

    /// What was left out, for people: `2 empty files (first: a/b.eml), ...`.
    pub fn skipped_reasons(&self) -> String {
        self.left_out()
            .map(|(why, n, first)| format!("{n} {why} (first: {})", first.display()))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// (reason, how many, first path): the files' tally, or the mbox
    /// reader's count of messages too large (an mbox is one path).
    fn left_out(&self) -> impl Iterator<Item = (&str, usize, &Path)> {
        let mbox = match &self.source {
            Source::Mbox { reader, path } if reader.skipped > 0 => {
                Some((TOO_LARGE, reader.skipped, path.as_path()))
            }
            _ => None,
        };
        self.skipped
            .iter()
            .map(|(why, (n, first))| (*why, *n, first.as_path()))
            .chain(mbox)
    }

    fn skip(&mut self, why: &'static str, path: &Path) {
        self.skipped.entry(why).or_insert((0, path.to_path_buf())).0 += 1;
    }

    /// Collects the message files below `dir`, following links; notes
    /// what it leaves out.
    fn walk(
        &mut self,
        dir: &Path,
        depth: usize,
        seen: &mut HashSet<PathBuf>,
        files: &mut Vec<PathBuf>,
    ) {
        let Ok(real) = dir.canonicalize() else {
            self.skip("unreadable folders", dir);
            return;
        };
        if !seen.insert(real) {
            self.skip("folders met twice through links", dir);
            return;
        }
        let Ok(list) = std::fs::read_dir(dir) else {
            self.skip("unreadable folders", dir);
            return;
        };
        let mut entries: Vec<PathBuf> = list.flatten().map(|e| e.path()).collect();
        entries.sort();
        for path in entries {
            let hidden = path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'));
            // metadata() follows links; a link to nothing fails here.
            match std::fs::metadata(&path) {
                Err(_) => self.skip("broken links or unreadable entries", &path),
                Ok(_) if hidden => self.skip("hidden files", &path),
                Ok(m) if m.is_dir() && depth == 0 => self.skip("folders nested too deep", &path),
                Ok(m) if m.is_dir() => self.walk(&path, depth - 1, seen, files),
                Ok(m) if !m.is_file() => self.skip("entries that are not files", &path),
                Ok(m) if m.len() == 0 => self.skip("empty files", &path),
                Ok(m) if m.len() > MAX_MESSAGE_SIZE => self.skip(TOO_LARGE, &path),
                Ok(_) => files.push(path),
            }
        }
    }
}

const TOO_LARGE: &str = "larger than the largest message Satchel takes";

/// A message starts with a header field (`Name: value`, RFC 5322 2.2) or
/// an mbox `From ` line; anything else (a picture, a note) is not one.
fn looks_like_a_message(raw: &[u8]) -> bool {
    if raw.starts_with(b"From ") {
        return true;
    }
    let name = raw
        .iter()
        .take_while(|&&b| b != b':' && (33..=126).contains(&b))
        .count();
    name > 0 && raw.get(name) == Some(&b':')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_starts_with_a_field() {
        assert!(looks_like_a_message(b"Subject: hi\r\n\r\nbody"));
        assert!(looks_like_a_message(
            b"From someone Tue Jan  2 10:00:00 2024\n"
        ));
        assert!(!looks_like_a_message(b"\x89PNG\r\n"));
        assert!(!looks_like_a_message(b"just some notes: here\n"));
        assert!(!looks_like_a_message(b": no name\n"));
    }
}
