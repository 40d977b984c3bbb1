//! The table: every kept entry, sorted by key, in one file that is only ever replaced whole.
//!
//! ```text
//! "OOSVAL01"                                  magic
//! [len u32][entry] …                          entries, sorted by key, each key once
//! [key 16][offset u64] …                      the index: the key and offset of every BLOCK-th entry
//! [entries u64][index at u64][index entries u64][index checksum u64]["OOSVEND1"]
//! ```
//!
//! A lookup is a binary search of the index (held in memory: 24 bytes per [`BLOCK`] entries,
//! 3.7 MB for 10^7) and one read of a block of [`BLOCK`] entries, from the page cache once warm.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::entry::{self, MAX_ENTRY};
use crate::engine::conditional::{Key, Validators};

/// Entries per block of the index.
pub const BLOCK: u64 = 64;
const MAGIC: &[u8; 8] = b"OOSVAL01";
const END: &[u8; 8] = b"OOSVEND1";
const TRAILER: u64 = 40;

fn corrupt(why: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why.into())
}

/// An open table: its file and its index.
#[derive(Debug)]
pub struct Table {
    file: File,
    index: Vec<(Key, u64)>,
    /// Where the entries end (the index begins).
    end: u64,
    entries: u64,
}

impl Table {
    /// Opens the table at `path`; `None` if there is none yet.
    ///
    /// # Errors
    /// It cannot be read, or it is not a table (a torn one cannot exist: tables are renamed into
    /// place whole).
    pub fn open(path: &Path) -> io::Result<Option<Table>> {
        let file = match File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let len = file.metadata()?.len();
        let mut magic = [0; 8];
        if len < MAGIC.len() as u64 + TRAILER || file.read_exact_at(&mut magic, 0).is_err() || &magic != MAGIC
        {
            return Err(corrupt("it is not a validator store of outofsync"));
        }
        let mut trailer = [0; TRAILER as usize];
        file.read_exact_at(&mut trailer, len - TRAILER)?;
        let word = |n: usize| u64::from_le_bytes(trailer[n * 8..n * 8 + 8].try_into().expect("8 bytes"));
        if &trailer[32..] != END {
            return Err(corrupt("its end is missing"));
        }
        let (entries, end, count, sum) = (word(0), word(1), word(2), word(3));
        if end < 8 || count.checked_mul(24).and_then(|n| n.checked_add(end + TRAILER)) != Some(len) {
            return Err(corrupt("its index does not fit the file"));
        }
        let mut raw = vec![0; (count * 24) as usize];
        file.read_exact_at(&mut raw, end)?;
        if u64::from(entry::checksum(&raw)) != sum {
            return Err(corrupt("its index is damaged"));
        }
        let index = raw
            .chunks_exact(24)
            .map(|c| {
                (
                    c[..16].try_into().expect("16 bytes"),
                    u64::from_le_bytes(c[16..].try_into().expect("8 bytes")),
                )
            })
            .collect();
        Ok(Some(Table { file, index, end, entries }))
    }

    /// How many requests it keeps validators for.
    pub fn len(&self) -> u64 {
        self.entries
    }

    /// The validators of `key`.
    ///
    /// # Errors
    /// The file cannot be read, or the block is damaged.
    pub fn get(&self, key: &Key) -> io::Result<Option<Validators>> {
        let block = self.index.partition_point(|(first, _)| first <= key);
        if block == 0 {
            return Ok(None);
        }
        let start = self.index[block - 1].1;
        let stop = self.index.get(block).map_or(self.end, |(_, offset)| *offset);
        if stop < start || stop - start > BLOCK * (MAX_ENTRY as u64 + 4) {
            return Err(corrupt("a block of its index is out of bounds"));
        }
        let mut bytes = vec![0; (stop - start) as usize];
        self.file.read_exact_at(&mut bytes, start)?;
        let mut reader = &bytes[..];
        let mut entry = Vec::new();
        while entry::read_framed(&mut reader, &mut entry)? {
            match entry::key_of(&entry).map(|k| k.cmp(key)) {
                Some(std::cmp::Ordering::Equal) => return Ok(entry::decode(&entry)),
                Some(std::cmp::Ordering::Greater) => break,
                _ => {}
            }
        }
        Ok(None)
    }

    /// Its entries in key order, read from the start.
    ///
    /// # Errors
    /// The file cannot be read.
    pub fn entries(&self) -> io::Result<Framed> {
        let mut file = self.file.try_clone()?;
        file.seek(SeekFrom::Start(MAGIC.len() as u64))?;
        Ok(Framed { reader: BufReader::with_capacity(1 << 20, file.take(self.end - MAGIC.len() as u64)) })
    }
}

/// A sequence of `[len u32][entry]`, read in order: a table's entries, or a sorted run's.
#[derive(Debug)]
pub struct Framed {
    reader: BufReader<io::Take<File>>,
}

impl Framed {
    /// Entries of a sorted run file, from its start.
    pub fn run(file: File) -> Framed {
        Framed { reader: BufReader::with_capacity(1 << 20, file.take(u64::MAX)) }
    }

    /// The next entry into `buf`; false at the end.
    ///
    /// # Errors
    /// The file cannot be read, or ends inside an entry.
    pub fn next_into(&mut self, buf: &mut Vec<u8>) -> io::Result<bool> {
        entry::read_framed(&mut self.reader, buf)
    }
}

/// Writes a new table, entries in increasing key order.
#[derive(Debug)]
pub struct TableWriter {
    out: BufWriter<File>,
    at: u64,
    entries: u64,
    index: Vec<u8>,
}

impl TableWriter {
    /// A table written into `file` (empty).
    ///
    /// # Errors
    /// Writing fails.
    pub fn new(file: File) -> io::Result<TableWriter> {
        let mut out = BufWriter::with_capacity(1 << 20, file);
        out.write_all(MAGIC)?;
        Ok(TableWriter { out, at: MAGIC.len() as u64, entries: 0, index: Vec::new() })
    }

    /// Appends an entry; its key is greater than the last one's.
    ///
    /// # Errors
    /// Writing fails.
    pub fn push(&mut self, entry: &[u8]) -> io::Result<()> {
        if self.entries.is_multiple_of(BLOCK) {
            self.index.extend_from_slice(&entry[..16]);
            self.index.extend_from_slice(&self.at.to_le_bytes());
        }
        self.out.write_all(&(entry.len() as u32).to_le_bytes())?;
        self.out.write_all(entry)?;
        self.at += 4 + entry.len() as u64;
        self.entries += 1;
        Ok(())
    }

    /// Writes the index and the trailer and syncs the file; returns the number of entries.
    ///
    /// # Errors
    /// Writing or syncing fails.
    pub fn finish(mut self) -> io::Result<u64> {
        self.out.write_all(&self.index)?;
        for word in
            [self.entries, self.at, (self.index.len() / 24) as u64, u64::from(entry::checksum(&self.index))]
        {
            self.out.write_all(&word.to_le_bytes())?;
        }
        self.out.write_all(END)?;
        let file = self.out.into_inner().map_err(io::IntoInnerError::into_error)?;
        file.sync_all()?;
        Ok(self.entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validators(n: u32) -> Validators {
        Validators { etag: Some(format!("\"v{n}\"")), ..Validators::default() }
    }

    #[test]
    fn every_entry_is_found_and_no_other_across_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t");
        let mut writer = TableWriter::new(File::create(&path).unwrap()).unwrap();
        let key = |n: u32| {
            let mut k = [0; 16];
            k[..4].copy_from_slice(&(n * 2).to_be_bytes());
            k
        };
        let mut entry = Vec::new();
        for n in 0..1000 {
            entry.clear();
            entry::encode(&key(n), &validators(n), &mut entry);
            writer.push(&entry).unwrap();
        }
        assert_eq!(writer.finish().unwrap(), 1000);
        let table = Table::open(&path).unwrap().unwrap();
        assert_eq!(table.len(), 1000);
        for n in [0, 1, 63, 64, 65, 500, 999] {
            assert_eq!(table.get(&key(n)).unwrap(), Some(validators(n)), "{n}");
            let mut between = key(n);
            between[4] = 1;
            assert_eq!(table.get(&between).unwrap(), None, "{n}+");
        }
        assert_eq!(table.get(&[0xff; 16]).unwrap(), None);
        let (mut all, mut buf, mut count) = (table.entries().unwrap(), Vec::new(), 0);
        while all.next_into(&mut buf).unwrap() {
            count += 1;
        }
        assert_eq!(count, 1000);
        std::fs::write(&path, b"OOSVAL01 and then nothing of a table").unwrap();
        assert!(Table::open(&path).is_err());
        assert!(Table::open(&dir.path().join("none")).unwrap().is_none());
    }
}
