//! The vector index on disk: one file holding every org's vectors, filter
//! data and graph, and the last commit it reflects (its watermark).
//!
//! Written whole to a temporary file, synced, then renamed over the old one
//! and the directory synced: a crash leaves the old file or the new one,
//! never a mix. A checksum over the whole file guards against torn or
//! damaged files; a file that does not check out is not loaded (the index
//! is rebuilt from the store instead).
//!
//! Layout (little-endian): `ONEDBVEC` version(u32) watermark(u64)
//! orgs(u32) { tenant(u128) dim(u32) slots(u32) ids deleted vectors
//! label-names type-names meta graph } crc32(u32).

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::error::{Error, Result};
use crate::keys::Tenant;
use crate::model::{Dim, Id};
use crate::vector::codes::Codes;
use crate::vector::hnsw::{Graph, Params};
use crate::vector::{Meta, Names, OrgVectors};

const MAGIC: &[u8; 8] = b"ONEDBVEC";
const VERSION: u32 = 1;
const NONE: u32 = u32::MAX;

/// Fault injection for tests (RELIABILITY.md C3): when set to N > 0, the
/// Nth file operation from now on fails. 0 disables it.
static FAIL_AT: AtomicUsize = AtomicUsize::new(0);
static OPS: AtomicUsize = AtomicUsize::new(0);

#[doc(hidden)]
pub fn fail_file_operation_at(n: usize) {
    OPS.store(0, Ordering::SeqCst);
    FAIL_AT.store(n, Ordering::SeqCst);
}

/// Counts one file operation; fails it if it is the one chosen to fail.
pub(crate) fn file_op(what: &str) -> Result<()> {
    let at = FAIL_AT.load(Ordering::SeqCst);
    if at > 0 && OPS.fetch_add(1, Ordering::SeqCst) + 1 == at {
        return Err(Error::io(format!("injected failure: {what}")));
    }
    Ok(())
}

/// Saves `orgs` with `watermark` to `path`, atomically.
pub fn save(path: &Path, watermark: u64, orgs: &[(Tenant, &OrgVectors)]) -> Result<()> {
    let mut out = Vec::new();
    out.extend_from_slice(MAGIC);
    put_u32(&mut out, VERSION);
    put_u64(&mut out, watermark);
    put_u32(&mut out, orgs.len() as u32);
    for (tenant, org) in orgs {
        write_org(&mut out, *tenant, org);
    }
    let crc = crc32fast::hash(&out);
    put_u32(&mut out, crc);

    let tmp = path.with_extension("tmp");
    file_op("create the vector index file")?;
    let mut f = File::create(&tmp)?;
    file_op("write the vector index file")?;
    f.write_all(&out)?;
    file_op("sync the vector index file")?;
    f.sync_all()?;
    drop(f);
    crate::crashpoint::hit("vectors.after_write");
    file_op("rename the vector index file")?;
    fs::rename(&tmp, path)?;
    crate::crashpoint::hit("vectors.after_rename");
    if let Some(dir) = path.parent() {
        file_op("sync the index directory")?;
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Loads the file: its watermark and orgs. `Ok(None)` if there is no file;
/// `CORRUPTION` if it does not check out.
pub fn load(path: &Path) -> Result<Option<(u64, HashMap<Tenant, OrgVectors>)>> {
    let mut bytes = Vec::new();
    match File::open(path) {
        Ok(mut f) => {
            file_op("read the vector index file")?;
            f.read_to_end(&mut bytes)?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    parse(&bytes)
        .map(Some)
        .ok_or_else(|| Error::corruption("vector index file", "damaged or of another version"))
}

fn parse(bytes: &[u8]) -> Option<(u64, HashMap<Tenant, OrgVectors>)> {
    if bytes.len() < MAGIC.len() + 4 + 8 + 4 + 4 {
        return None;
    }
    let (body, crc) = bytes.split_at(bytes.len() - 4);
    if crc32fast::hash(body) != u32::from_le_bytes(crc.try_into().ok()?) {
        return None;
    }
    let mut r = Reader { bytes: body };
    if r.take(8)? != MAGIC || r.u32()? != VERSION {
        return None;
    }
    let watermark = r.u64()?;
    let count = r.u32()?;
    let mut orgs = HashMap::new();
    for _ in 0..count {
        let (tenant, org) = read_org(&mut r)?;
        orgs.insert(tenant, org);
    }
    r.bytes.is_empty().then_some((watermark, orgs))
}

fn write_org(out: &mut Vec<u8>, tenant: Tenant, org: &OrgVectors) {
    let n = org.ids.len();
    out.extend_from_slice(&tenant.raw().to_le_bytes());
    put_u32(out, org.dim as u32);
    put_u32(out, n as u32);
    for id in &org.ids {
        out.extend_from_slice(&id.raw().to_le_bytes());
    }
    out.extend(org.deleted.iter().map(|d| *d as u8));
    for x in org.data.iter() {
        out.extend_from_slice(&x.to_le_bytes());
    }
    for names in [&org.labels, &org.types] {
        put_u32(out, names.names.len() as u32);
        for name in &names.names {
            put_u32(out, name.len() as u32);
            out.extend_from_slice(name.as_bytes());
        }
    }
    for m in &org.meta {
        match m.source {
            Some(s) => {
                out.push(1);
                out.extend_from_slice(&s.raw().to_le_bytes());
            }
            None => out.push(0),
        }
        put_u32(out, m.source_type.unwrap_or(NONE));
        put_u32(out, m.labels.len() as u32);
        for l in &m.labels {
            put_u32(out, *l);
        }
    }
    let params = org.graph.params();
    let parts = org.graph.parts();
    for p in [params.m, params.m0, params.ef_construction] {
        put_u32(out, p as u32);
    }
    put_u32(out, parts.entry.unwrap_or(NONE));
    out.extend_from_slice(parts.levels);
    out.extend_from_slice(parts.layer0_len);
    for s in parts.layer0 {
        put_u32(out, *s);
    }
    for lists in parts.upper {
        for list in lists {
            put_u32(out, list.len() as u32);
            for s in list {
                put_u32(out, *s);
            }
        }
    }
}

fn read_org(r: &mut Reader<'_>) -> Option<(Tenant, OrgVectors)> {
    let tenant = Tenant::from_raw(r.u128()?);
    let dim = r.u32()? as usize;
    let n = r.u32()? as usize;
    if dim == 0 || dim > crate::model::limits::EMBEDDING_DIMS {
        return None;
    }
    let mut ids = Vec::with_capacity(n.min(r.bytes.len() / 16));
    for _ in 0..n {
        ids.push(Id::from_raw(Dim::Knowledge, r.u128()?));
    }
    let deleted: Vec<bool> = r.take(n)?.iter().map(|b| *b != 0).collect();
    let floats = n.checked_mul(dim)?;
    let raw = r.take(floats.checked_mul(4)?)?;
    let data: Vec<f32> = raw
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let mut tables = Vec::with_capacity(2);
    for _ in 0..2 {
        let count = r.u32()? as usize;
        let mut names = Names::default();
        for _ in 0..count {
            let len = r.u32()? as usize;
            let name = std::str::from_utf8(r.take(len)?).ok()?;
            names.intern(name);
        }
        if names.names.len() != count {
            return None;
        }
        tables.push(names);
    }
    let mut types = tables.pop()?;
    let mut labels = tables.pop()?;
    let mut meta = Vec::with_capacity(n.min(r.bytes.len()));
    let mut postings: Vec<Vec<u32>> = vec![Vec::new(); labels.names.len()];
    for (slot, is_deleted) in deleted.iter().enumerate() {
        let source = match r.u8()? {
            0 => None,
            1 => Some(Id::from_raw(Dim::Thing, r.u128()?)),
            _ => return None,
        };
        let source_type = match r.u32()? {
            NONE => None,
            t if (t as usize) < types.names.len() => Some(t),
            _ => return None,
        };
        let count = r.u32()? as usize;
        let mut item_labels = Vec::with_capacity(count.min(r.bytes.len() / 4));
        for _ in 0..count {
            let l = r.u32()?;
            postings.get_mut(l as usize)?.push(slot as u32);
            item_labels.push(l);
        }
        if !is_deleted {
            for l in &item_labels {
                labels.live[*l as usize] += 1;
            }
            if let Some(t) = source_type {
                types.live[t as usize] += 1;
            }
        }
        meta.push(Meta {
            labels: item_labels,
            source,
            source_type,
        });
    }
    let params = Params {
        m: r.u32()? as usize,
        m0: r.u32()? as usize,
        ef_construction: r.u32()? as usize,
    };
    if params.m0 == 0 || params.m0 > 255 || params.m == 0 {
        return None;
    }
    let entry = match r.u32()? {
        NONE => None,
        e => Some(e),
    };
    let levels = r.take(n)?.to_vec();
    let layer0_len = r.take(n)?.to_vec();
    let mut layer0 = Vec::with_capacity(n.checked_mul(params.m0)?.min(r.bytes.len() / 4));
    for _ in 0..n * params.m0 {
        layer0.push(r.u32()?);
    }
    let mut upper = Vec::with_capacity(n);
    for level in &levels {
        let mut lists = Vec::with_capacity(*level as usize);
        for _ in 0..*level {
            let len = r.u32()? as usize;
            let mut list = Vec::with_capacity(len.min(r.bytes.len() / 4));
            for _ in 0..len {
                list.push(r.u32()?);
            }
            lists.push(list);
        }
        upper.push(lists);
    }
    let graph = Graph::from_parts(params, levels, layer0_len, layer0, upper, entry)?;
    let slots = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (*id, i as u32))
        .collect::<HashMap<_, _>>();
    if slots.len() != n {
        return None;
    }
    let live = deleted.iter().filter(|d| !**d).count();
    let org = OrgVectors {
        dim,
        ids,
        slots,
        codes: Codes::of_rows(dim, &data),
        data: data.into(),
        meta,
        deleted,
        live,
        labels,
        postings,
        types,
        graph,
        visited: Default::default(),
        // What the file holds was read before any snapshot open now.
        read_at: 0,
    };
    Some((tenant, org))
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// Bounds-checked reading: every read is None past the end.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.bytes.len() < n {
            return None;
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn u128(&mut self) -> Option<u128> {
        Some(u128::from_le_bytes(self.take(16)?.try_into().ok()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vector::{Item, VectorFilter};

    fn sample() -> OrgVectors {
        let mut org = OrgVectors::new(4);
        for i in 0..300u32 {
            let v = [i as f32, 1.0, (i % 7) as f32, -(i as f32) / 3.0];
            let item = Item {
                id: Id::generate(Dim::Knowledge),
                labels: if i % 3 == 0 {
                    vec!["topic:rust".into()]
                } else {
                    vec![]
                },
                source: (i % 2 == 0).then(|| Id::generate(Dim::Thing)),
                source_type: (i % 2 == 0).then(|| "lesson".to_string()),
            };
            org.add(&item, &v);
        }
        let first = org.ids[0];
        org.delete(first);
        org
    }

    #[test]
    fn a_saved_index_loads_back_the_same_and_answers_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vectors.bin");
        let org = sample();
        let tenant = Tenant::from_raw(42);
        save(&path, 17, &[(tenant, &org)]).unwrap();
        let (watermark, mut orgs) = load(&path).unwrap().unwrap();
        assert_eq!(watermark, 17);
        let back = orgs.remove(&tenant).unwrap();
        assert_eq!(back.ids, org.ids);
        assert_eq!(back.data, org.data);
        assert_eq!(back.meta, org.meta);
        assert_eq!(back.deleted, org.deleted);
        assert_eq!(back.labels, org.labels);
        assert_eq!(back.types, org.types);
        assert_eq!(back.postings, org.postings);
        assert_eq!(back.graph, org.graph);
        assert_eq!(back.live, org.live);
        let filter = VectorFilter {
            labels: vec!["topic:rust".into()],
            ..Default::default()
        };
        let q = [3.0, 1.0, 0.5, -1.0];
        assert_eq!(
            back.search(&q, 5, &filter, &|_| false),
            org.search(&q, 5, &filter, &|_| false)
        );
    }

    #[test]
    fn a_damaged_file_is_refused_and_a_missing_one_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vectors.bin");
        assert!(load(&path).unwrap().is_none());
        save(&path, 1, &[(Tenant::from_raw(1), &sample())]).unwrap();
        let mut bytes = fs::read(&path).unwrap();
        for at in [0, 20, bytes.len() / 2, bytes.len() - 1] {
            bytes[at] ^= 0x40;
            fs::write(&path, &bytes).unwrap();
            assert!(load(&path).is_err(), "flipped byte {at}");
            bytes[at] ^= 0x40;
        }
        fs::write(&path, &bytes[..bytes.len() - 9]).unwrap();
        assert!(load(&path).is_err());
    }

    #[test]
    fn parsing_arbitrary_bytes_never_panics() {
        for len in 0..200usize {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            assert!(parse(&bytes).is_none());
        }
    }
}
