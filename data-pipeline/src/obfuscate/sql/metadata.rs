//! Metadata gathered while obfuscating: table names (comma-separated, first-seen order, no
//! duplicates), commands, comments and procedure names, and their byte size as the agent counts it.

use super::text::{into_string, trim_space};
use std::collections::HashSet;

/// The legacy obfuscator's metadata (tables deduplicated; commands and comments as met).
#[derive(Debug, Default)]
pub(crate) struct LegacyMetadata {
    pub(crate) size: i64,
    /// Created on the first table (most queries are obfuscated without collecting tables).
    tables_seen: Option<HashSet<Vec<u8>>>,
    pub(crate) tables_csv: Vec<u8>,
    pub(crate) commands: Vec<String>,
    pub(crate) comments: Vec<String>,
}

impl LegacyMetadata {
    /// A comment, brought onto one line and trimmed.
    pub(crate) fn add_comment(&mut self, raw: &[u8]) {
        let one_line: Vec<u8> = raw
            .iter()
            .map(|&b| if b == b'\n' { b' ' } else { b })
            .collect();
        let c = trim_space(&one_line);
        self.size += c.len() as i64;
        self.comments.push(into_string(c.to_vec()));
    }

    pub(crate) fn add_command(&mut self, cmd: &str) {
        self.size += cmd.len() as i64;
        self.commands.push(cmd.to_owned());
    }

    pub(crate) fn add_table(&mut self, name: &[u8]) {
        let seen = self.tables_seen.get_or_insert_with(HashSet::new);
        if seen.contains(name) {
            return;
        }
        seen.insert(name.to_vec());
        if !self.tables_csv.is_empty() {
            self.size += 1;
            self.tables_csv.push(b',');
        }
        self.size += name.len() as i64;
        self.tables_csv.extend_from_slice(name);
    }
}

/// The sqllexer normalizer's metadata: each list deduplicated.
#[derive(Debug, Default)]
pub(crate) struct LexerMetadata {
    pub(crate) size: i64,
    seen: HashSet<(u8, Vec<u8>)>,
    pub(crate) tables: Vec<String>,
    pub(crate) comments: Vec<String>,
    pub(crate) commands: Vec<String>,
    pub(crate) procedures: Vec<String>,
}

/// Which list of [`LexerMetadata`].
#[derive(Clone, Copy)]
pub(crate) enum List {
    Tables = 0,
    Comments = 1,
    Commands = 2,
    Procedures = 3,
}

impl LexerMetadata {
    pub(crate) fn add(&mut self, list: List, value: &[u8]) {
        let key = (list as u8, value.to_vec());
        if self.seen.contains(&key) {
            return;
        }
        self.seen.insert(key);
        self.size += value.len() as i64;
        let s = into_string(value.to_vec());
        match list {
            List::Tables => self.tables.push(s),
            List::Comments => self.comments.push(s),
            List::Commands => self.commands.push(s),
            List::Procedures => self.procedures.push(s),
        }
    }
}
