//! The name index: a tantivy index of the names of things and people, with
//! tenant, type and status as filter fields and BM25 ranking.
//!
//! Every query names its tenants (the caller's org, plus the platform
//! tenant's global things), and its BM25 statistics — document count,
//! name length and document frequencies — are counted within those tenants
//! only, so neither hits nor scores tell one org anything about another.
//! The statistics are exact for the records as the searcher sees them: the
//! index's live documents, minus the old versions of records about to be
//! replaced, plus those records' current names. So a score does not depend
//! on how far the indexer has got, or on when tantivy merges.
//!
//! Name words are indexed as tenant-scoped terms (`<tenant>:<word>`), so a
//! query is built from its tenants' terms alone: it never reads another
//! org's postings, and its cost follows the org's size, not the platform's.
//!
//! The index stores no text: per document the id (two u64 fast fields and
//! its dimension), its tenant and name length, and the indexed filter
//! terms. A tantivy commit carries the last onedb commit it reflects in its
//! payload (the watermark).

use std::collections::{BinaryHeap, HashMap};
use std::path::Path;
use std::sync::Arc;

use parking_lot::Mutex;
use tantivy::collector::{Count, DocSetCollector};
use tantivy::columnar::{ColumnIndex, ColumnValues};
use tantivy::index::SegmentId;
use tantivy::query::{
    Bm25StatisticsProvider, Bm25Weight, BooleanQuery, ConstScoreQuery, Occur, Query, TermQuery,
};
use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, STRING, Schema, TextFieldIndexing, TextOptions,
};
use tantivy::tokenizer::TextAnalyzer;
use tantivy::{
    DocAddress, DocId, Index, IndexReader, IndexSettings, IndexSortByField, IndexWriter, Order,
    ReloadPolicy, Searcher, SegmentReader, TantivyDocument, Term,
};

use crate::error::{Error, Result};
use crate::keys::Tenant;
use crate::model::{Dim, Id, Ranked};

/// Memory for tantivy's indexing buffer (its minimum is 15 MB).
const WRITER_BYTES: usize = 24 << 20;

/// What the index holds of a thing or a person.
#[derive(Debug, Clone, PartialEq)]
pub struct NameDoc {
    pub tenant: Tenant,
    pub id: Id,
    /// The thing type, or `person`.
    pub kind: String,
    pub status: String,
    pub name: String,
}

/// What a name query keeps: documents of these tenants, of one of these
/// types (None: any) and statuses (None: any).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NameFilter {
    pub tenants: Vec<Tenant>,
    pub kinds: Option<Vec<String>>,
    pub statuses: Option<Vec<String>>,
}

#[derive(Clone, Copy)]
struct Fields {
    key: Field,
    id_hi: Field,
    id_lo: Field,
    dim: Field,
    tenant_hi: Field,
    tenant_lo: Field,
    len: Field,
    kind: Field,
    status: Field,
    name: Field,
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let name_options = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            // The words arrive analyzed and tenant-scoped (`push_scoped`).
            .set_tokenizer("whitespace")
            .set_index_option(IndexRecordOption::WithFreqs),
    );
    let fields = Fields {
        // Indexed too: a record's old version is deleted by its key term.
        key: b.add_bytes_field(KEY, INDEXED | FAST),
        id_hi: b.add_u64_field("id_hi", FAST),
        id_lo: b.add_u64_field("id_lo", FAST),
        dim: b.add_u64_field("dim", FAST),
        tenant_hi: b.add_u64_field("tenant_hi", FAST),
        tenant_lo: b.add_u64_field("tenant_lo", FAST),
        len: b.add_u64_field("len", FAST),
        kind: b.add_text_field("kind", STRING),
        status: b.add_text_field("status", STRING),
        name: b.add_text_field("name", name_options),
    };
    (b.build(), fields)
}

/// The bytes fast field the index is sorted by: the id, in `Id`'s order
/// (dimension, then the raw id), so document order is id order in every
/// segment, merged ones too.
const KEY: &str = "key";

fn id_key(id: Id) -> Vec<u8> {
    let mut key = Vec::with_capacity(17);
    key.push(id.dim() as u8);
    key.extend_from_slice(&id.raw().to_be_bytes());
    key
}

fn settings() -> IndexSettings {
    IndexSettings {
        sort_by_field: Some(IndexSortByField {
            field: KEY.into(),
            order: Order::Asc,
        }),
        ..IndexSettings::default()
    }
}

/// The tenant as its words' prefix: 32 lowercase hex digits. Written
/// digit by digit: it is made for every document the indexer adds, and the
/// formatting machinery cost a tenth of the indexer's instructions.
fn tenant_term(t: Tenant) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let raw = t.raw();
    (0..32)
        .rev()
        .map(|digit| char::from(HEX[((raw >> (4 * digit)) & 0xf) as usize]))
        .collect()
}

/// A name word as the index holds it: scoped to its tenant.
fn scoped_word(t: Tenant, word: &str) -> String {
    let mut out = String::new();
    push_scoped(&mut out, &tenant_term(t), word);
    out
}

/// Appends `word` scoped to the tenant whose `tenant_term` is `tenant`.
fn push_scoped(out: &mut String, tenant: &str, word: &str) {
    out.push_str(tenant);
    out.push(':');
    out.push_str(word);
}

/// The word of a scoped term.
fn unscoped(term: &str) -> Option<&str> {
    term.split_once(':').map(|(_, w)| w)
}

fn search_err(e: tantivy::TantivyError) -> Error {
    Error::io(format!("name index: {e}"))
}

/// A document's facts as its segment's fast-field columns hold them,
/// opened once per segment (opening a column costs more than a query's
/// reads of it; segments never change, only disappear).
#[derive(Clone)]
struct Columns {
    id_hi: Arc<dyn ColumnValues<u64>>,
    id_lo: Arc<dyn ColumnValues<u64>>,
    dim: Arc<dyn ColumnValues<u64>>,
    tenant_hi: Arc<dyn ColumnValues<u64>>,
    tenant_lo: Arc<dyn ColumnValues<u64>>,
    len: Arc<dyn ColumnValues<u64>>,
}

impl Columns {
    fn open(segment: &SegmentReader) -> Result<Columns> {
        let ff = segment.fast_fields();
        // Every document has every column: read the values directly (the
        // optional-index wrapper costs a rank lookup per read).
        let column = |name: &str| -> Result<Arc<dyn ColumnValues<u64>>> {
            let column = ff.u64(name).map_err(search_err)?;
            Ok(match column.index {
                ColumnIndex::Full => column.values,
                _ => column.first_or_default_col(0),
            })
        };
        Ok(Columns {
            id_hi: column("id_hi")?,
            id_lo: column("id_lo")?,
            dim: column("dim")?,
            tenant_hi: column("tenant_hi")?,
            tenant_lo: column("tenant_lo")?,
            len: column("len")?,
        })
    }

    fn id(&self, doc: DocId) -> Result<Id> {
        let dim = Dim::from_tag(self.dim.get_val(doc) as u8)
            .ok_or_else(|| Error::corruption("name index", "a document has a bad id"))?;
        let raw = ((self.id_hi.get_val(doc) as u128) << 64) | self.id_lo.get_val(doc) as u128;
        Ok(Id::from_raw(dim, raw))
    }

    /// The document's tenant, id and name length.
    fn facts(&self, doc: DocId) -> Result<(Tenant, Id, u64)> {
        let tenant =
            ((self.tenant_hi.get_val(doc) as u128) << 64) | self.tenant_lo.get_val(doc) as u128;
        Ok((
            Tenant::from_raw(tenant),
            self.id(doc)?,
            self.len.get_val(doc),
        ))
    }
}

/// The best `limit` documents by (score, id). Like tantivy's top-score
/// collector it hands the scorer the worst kept score as its threshold, so
/// block-max WAND skips what cannot enter. That is exact for ties too: the
/// index is sorted by id (`KEY`), so a later document of a segment that
/// ties with the worst kept one has a larger id and ranks after it. A
/// document's id is read only when its score enters.
struct TopByScore {
    limit: usize,
    columns: HashMap<SegmentId, Columns>,
}

impl TopByScore {
    fn offer(
        &self,
        heap: &mut BinaryHeap<Ranked>,
        columns: &Columns,
        doc: DocId,
        score: f32,
    ) -> f32 {
        if self.limit == 0 {
            return f32::INFINITY;
        }
        let full = heap.len() >= self.limit;
        if (!full || heap.peek().is_some_and(|w| score >= w.0))
            && let Ok(id) = columns.id(doc)
        {
            let hit = Ranked(score, id);
            if !full {
                heap.push(hit);
            } else if heap.peek().is_some_and(|worst| hit < *worst) {
                heap.pop();
                heap.push(hit);
            }
        }
        match heap.peek() {
            Some(w) if heap.len() >= self.limit => w.0,
            _ => f32::MIN,
        }
    }
}

impl tantivy::collector::Collector for TopByScore {
    type Fruit = Vec<(f32, Id)>;
    type Child = NoSegmentCollector;

    fn for_segment(&self, _: u32, _: &SegmentReader) -> tantivy::Result<NoSegmentCollector> {
        Ok(NoSegmentCollector)
    }

    fn requires_scoring(&self) -> bool {
        true
    }

    fn collect_segment(
        &self,
        weight: &dyn tantivy::query::Weight,
        _: u32,
        reader: &SegmentReader,
    ) -> tantivy::Result<Vec<(f32, Id)>> {
        let Some(columns) = self.columns.get(&reader.segment_id()) else {
            return Ok(Vec::new());
        };
        let mut heap = BinaryHeap::with_capacity(self.limit + 1);
        let alive = reader.alive_bitset();
        let mut threshold = f32::MIN;
        weight.for_each_pruning(f32::MIN, reader, &mut |doc, score| {
            if alive.is_some_and(|a| a.is_deleted(doc)) {
                return threshold;
            }
            threshold = self.offer(&mut heap, columns, doc, score);
            threshold
        })?;
        Ok(heap.into_iter().map(|r| (r.0, r.1)).collect())
    }

    fn merge_fruits(&self, fruits: Vec<Vec<(f32, Id)>>) -> tantivy::Result<Vec<(f32, Id)>> {
        let mut all: Vec<Ranked> = fruits
            .into_iter()
            .flatten()
            .map(|(s, id)| Ranked(s, id))
            .collect();
        all.sort();
        all.truncate(self.limit);
        Ok(all.into_iter().map(|r| (r.0, r.1)).collect())
    }
}

/// `TopByScore` collects whole segments itself; this is never fed.
struct NoSegmentCollector;

impl tantivy::collector::SegmentCollector for NoSegmentCollector {
    type Fruit = Vec<(f32, Id)>;

    fn collect(&mut self, _: DocId, _: f32) {}

    fn harvest(self) -> Vec<(f32, Id)> {
        Vec::new()
    }
}

/// Document frequencies per (tenant, word), with the searcher generation
/// they were counted in.
type DocFreqs = (u64, HashMap<(Tenant, String), u64>);

/// Live documents and name words per tenant.
type Totals = HashMap<Tenant, (u64, u64)>;

/// A segment's totals, and how many of its documents were deleted when
/// they were counted (deletes are the only way a segment changes).
struct SegmentTotals {
    deleted: u32,
    totals: Totals,
}

pub struct NameIndex {
    writer: Mutex<IndexWriter>,
    /// Deletes issued since open (tests check that creations issue none).
    #[cfg(test)]
    pub(super) deletes: std::sync::atomic::AtomicU64,
    reader: IndexReader,
    fields: Fields,
    analyzer: TextAnalyzer,
    /// Per segment, counted once per state of its deletes.
    totals: Mutex<HashMap<SegmentId, SegmentTotals>>,
    /// Document frequency per (tenant, word), for one searcher generation.
    df_cache: Mutex<DocFreqs>,
    columns: Mutex<HashMap<SegmentId, Columns>>,
}

impl NameIndex {
    /// Opens the index in `dir`, creating an empty one if there is none.
    /// Returns the index and its watermark (0 for a new index), or an error
    /// if the files do not open (the caller then rebuilds).
    pub fn open(dir: &Path) -> Result<(NameIndex, u64, bool)> {
        std::fs::create_dir_all(dir)?;
        let (schema, fields) = schema();
        let existed = Index::exists(
            &tantivy::directory::MmapDirectory::open(dir)
                .map_err(|e| Error::io(format!("name index directory {}: {e}", dir.display())))?,
        )
        .map_err(|e| Error::io(format!("name index: {e}")))?;
        let index = if existed {
            let index = Index::open_in_dir(dir).map_err(search_err)?;
            if index.schema() != schema
                || index.settings().sort_by_field != settings().sort_by_field
            {
                return Err(Error::corruption("name index", "its schema is not onedb's"));
            }
            index
        } else {
            Index::builder()
                .schema(schema)
                .settings(settings())
                .create_in_dir(dir)
                .map_err(search_err)?
        };
        let watermark = match index.load_metas().map_err(search_err)?.payload {
            Some(p) => p
                .parse::<u64>()
                .map_err(|_| Error::corruption("name index", "watermark is not a number"))?,
            None => 0,
        };
        let writer = index
            .writer_with_num_threads(1, WRITER_BYTES)
            .map_err(search_err)?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(search_err)?;
        let analyzer = index
            .tokenizers()
            .get("default")
            .ok_or_else(|| Error::io("name index: no default tokenizer"))?;
        let names = NameIndex {
            writer: Mutex::new(writer),
            #[cfg(test)]
            deletes: Default::default(),
            reader,
            fields,
            analyzer,
            totals: Mutex::new(HashMap::new()),
            df_cache: Mutex::new((u64::MAX, HashMap::new())),
            columns: Mutex::new(HashMap::new()),
        };
        Ok((names, watermark, existed))
    }

    /// Live documents and name words of `tenants` in `searcher`: summed
    /// over its segments, each counted once per state of its deletes.
    fn tenant_totals(&self, searcher: &Searcher, tenants: &[Tenant]) -> Result<(u64, u64)> {
        let columns = self.columns(searcher)?;
        let mut cache = self.totals.lock();
        let (mut docs, mut tokens) = (0, 0);
        for (segment, columns) in searcher.segment_readers().iter().zip(columns) {
            let deleted = segment.num_deleted_docs();
            let stale = cache
                .get(&segment.segment_id())
                .is_none_or(|t| t.deleted != deleted);
            if stale {
                let mut totals = Totals::new();
                for doc in segment.doc_ids_alive() {
                    let (tenant, _, len) = columns.facts(doc)?;
                    let t = totals.entry(tenant).or_default();
                    t.0 += 1;
                    t.1 += len;
                }
                cache.insert(segment.segment_id(), SegmentTotals { deleted, totals });
            }
            if let Some(counted) = cache.get(&segment.segment_id()) {
                for t in tenants {
                    if let Some((d, n)) = counted.totals.get(t) {
                        docs += d;
                        tokens += n;
                    }
                }
            }
        }
        Ok((docs, tokens))
    }

    /// The columns of every segment of `searcher`, from the cache.
    fn columns(&self, searcher: &Searcher) -> Result<Vec<Columns>> {
        let mut cache = self.columns.lock();
        let mut out = Vec::with_capacity(searcher.segment_readers().len());
        for segment in searcher.segment_readers() {
            let c = match cache.get(&segment.segment_id()) {
                Some(c) => c.clone(),
                None => {
                    let c = Columns::open(segment)?;
                    cache.insert(segment.segment_id(), c.clone());
                    c
                }
            };
            out.push(c);
        }
        Ok(out)
    }

    /// Drops every document (before a rebuild).
    pub fn clear(&self) -> Result<()> {
        self.writer
            .lock()
            .delete_all_documents()
            .map_err(search_err)?;
        Ok(())
    }

    /// Adds or replaces a document (applied at the next `commit`).
    pub fn upsert(&self, doc: &NameDoc) -> Result<()> {
        self.remove(doc.id)?;
        self.add(doc)
    }

    /// Adds a document the index cannot hold yet: one for a record created
    /// since the index's last commit (applied at the next `commit`).
    pub fn add(&self, doc: &NameDoc) -> Result<()> {
        let f = self.fields;
        // The name's words, each scoped to the tenant, space-separated for
        // the whitespace tokenizer: one string, the tenant written once.
        let tenant = tenant_term(doc.tenant);
        let mut scoped = String::with_capacity(2 * doc.name.len() + 40);
        let mut len = 0;
        self.each_word(&doc.name, |word| {
            if len > 0 {
                scoped.push(' ');
            }
            push_scoped(&mut scoped, &tenant, word);
            len += 1;
        });
        let mut d = TantivyDocument::default();
        d.add_bytes(f.key, &id_key(doc.id));
        d.add_u64(f.id_hi, (doc.id.raw() >> 64) as u64);
        d.add_u64(f.id_lo, doc.id.raw() as u64);
        d.add_u64(f.dim, doc.id.dim().tag() as u64);
        d.add_u64(f.tenant_hi, (doc.tenant.raw() >> 64) as u64);
        d.add_u64(f.tenant_lo, doc.tenant.raw() as u64);
        d.add_u64(f.len, len);
        d.add_text(f.kind, &doc.kind);
        d.add_text(f.status, &doc.status);
        d.add_text(f.name, scoped);
        self.writer.lock().add_document(d).map_err(search_err)?;
        Ok(())
    }

    /// Removes a document (applied at the next `commit`).
    pub fn remove(&self, id: Id) -> Result<()> {
        #[cfg(test)]
        self.deletes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.writer
            .lock()
            .delete_term(Term::from_field_bytes(self.fields.key, &id_key(id)));
        Ok(())
    }

    /// Makes every change so far durable, with `watermark` as the payload,
    /// and lets new searchers see them.
    pub fn commit(&self, watermark: u64) -> Result<()> {
        {
            let mut writer = self.writer.lock();
            let mut prepared = writer.prepare_commit().map_err(search_err)?;
            prepared.set_payload(&watermark.to_string());
            prepared.commit().map_err(search_err)?;
        }
        self.reader.reload().map_err(search_err)?;
        let live: std::collections::HashSet<SegmentId> = self
            .searcher()
            .segment_readers()
            .iter()
            .map(|s| s.segment_id())
            .collect();
        self.columns.lock().retain(|id, _| live.contains(id));
        self.totals.lock().retain(|id, _| live.contains(id));
        Ok(())
    }

    pub fn searcher(&self) -> Searcher {
        self.reader.searcher()
    }

    /// The words of `text` as the index sees them (lowercased tokens).
    pub fn words(&self, text: &str) -> Vec<String> {
        let mut out = Vec::new();
        self.each_word(text, |w| out.push(w.to_string()));
        out
    }

    /// Calls `f` with each word of `text`, as `words` would list them.
    fn each_word(&self, text: &str, mut f: impl FnMut(&str)) {
        let mut analyzer = self.analyzer.clone();
        let mut stream = analyzer.token_stream(text);
        while stream.advance() {
            f(&stream.token().text);
        }
    }

    fn term_query(&self, field: Field, text: &str) -> Box<dyn Query> {
        Box::new(TermQuery::new(
            Term::from_field_text(field, text),
            IndexRecordOption::Basic,
        ))
    }

    fn any_of(&self, field: Field, values: &[String]) -> Box<dyn Query> {
        Box::new(BooleanQuery::new(
            values
                .iter()
                .map(|v| (Occur::Should, self.term_query(field, v)))
                .collect(),
        ))
    }

    /// The type and status filters, if any (the tenants are in the terms).
    fn filter_query(&self, filter: &NameFilter) -> Option<Box<dyn Query>> {
        let f = self.fields;
        let mut must = Vec::new();
        if let Some(kinds) = &filter.kinds {
            must.push((Occur::Must, self.any_of(f.kind, kinds)));
        }
        if let Some(statuses) = &filter.statuses {
            must.push((Occur::Must, self.any_of(f.status, statuses)));
        }
        (!must.is_empty()).then(|| {
            Box::new(ConstScoreQuery::new(Box::new(BooleanQuery::new(must)), 0.0)) as Box<dyn Query>
        })
    }

    /// Documents of `tenants` whose names hold `word`.
    fn word_query(&self, tenants: &[Tenant], word: &str) -> Box<dyn Query> {
        let scoped: Vec<String> = tenants.iter().map(|t| scoped_word(*t, word)).collect();
        self.any_of(self.fields.name, &scoped)
    }

    /// Documents of `tenant` holding `word`, in `searcher` (cached per
    /// searcher generation).
    fn doc_freq(&self, searcher: &Searcher, tenant: Tenant, word: &str) -> Result<u64> {
        let generation = searcher.generation().generation_id();
        {
            let mut cache = self.df_cache.lock();
            if cache.0 != generation {
                *cache = (generation, HashMap::new());
            }
            if let Some(n) = cache.1.get(&(tenant, word.to_string())) {
                return Ok(*n);
            }
        }
        let q = self.term_query(self.fields.name, &scoped_word(tenant, word));
        let n = searcher.search(&q, &Count).map_err(search_err)? as u64;
        let mut cache = self.df_cache.lock();
        if cache.0 == generation {
            cache.1.insert((tenant, word.to_string()), n);
        }
        Ok(n)
    }

    /// The BM25 statistics of `filter`'s tenants as they stand with the
    /// records `replaced` (ids whose indexed version, if any, no longer
    /// counts) and `current` (the word lists of names not in the index).
    pub fn stats(
        &self,
        searcher: &Searcher,
        filter: &NameFilter,
        words: &[String],
        replaced: &[Id],
        current: &[Vec<String>],
    ) -> Result<TenantStats> {
        let (mut docs, mut tokens) = self.tenant_totals(searcher, &filter.tenants)?;
        let mut df: HashMap<String, u64> = HashMap::new();
        for w in words {
            if !df.contains_key(w) {
                let mut n = 0;
                for t in &filter.tenants {
                    n += self.doc_freq(searcher, *t, w)?;
                }
                df.insert(w.clone(), n);
            }
        }
        if !replaced.is_empty() {
            // The old versions of replaced records: one query for all.
            // Ids are unique across tenants: the word queries below are
            // scoped to the filter's tenants, and so is this count.
            let old: Box<dyn Query> = Box::new(BooleanQuery::new(
                replaced
                    .iter()
                    .map(|id| {
                        let term = Term::from_field_bytes(self.fields.key, &id_key(*id));
                        let q: Box<dyn Query> =
                            Box::new(TermQuery::new(term, IndexRecordOption::Basic));
                        (Occur::Should, q)
                    })
                    .collect(),
            ));
            for addr in searcher
                .search(&old, &DocSetCollector)
                .map_err(search_err)?
            {
                let (tenant, _, len) = self.doc_facts(searcher, addr)?;
                if !filter.tenants.contains(&tenant) {
                    continue;
                }
                docs = docs.saturating_sub(1);
                tokens = tokens.saturating_sub(len);
            }
            for (w, n) in df.iter_mut() {
                let q = BooleanQuery::new(vec![
                    (Occur::Must, old.box_clone()),
                    (Occur::Must, self.word_query(&filter.tenants, w)),
                ]);
                let gone = searcher.search(&q, &Count).map_err(search_err)? as u64;
                *n = n.saturating_sub(gone);
            }
        }
        for doc_words in current {
            docs += 1;
            tokens += doc_words.len() as u64;
            for (w, n) in df.iter_mut() {
                if doc_words.contains(w) {
                    *n += 1;
                }
            }
        }
        Ok(TenantStats {
            docs: docs.max(1),
            tokens,
            df,
            name: self.fields.name,
        })
    }

    /// The best `limit` documents for `words` among those `filter` keeps:
    /// (score, id), best first.
    pub fn query(
        &self,
        searcher: &Searcher,
        stats: &TenantStats,
        words: &[String],
        filter: &NameFilter,
        limit: usize,
    ) -> Result<Vec<(f32, Id)>> {
        if words.is_empty() || limit == 0 || filter.tenants.is_empty() {
            return Ok(Vec::new());
        }
        // One term per word and tenant: the scoping is in the terms.
        let text: Vec<(Occur, Box<dyn Query>)> = words
            .iter()
            .flat_map(|w| filter.tenants.iter().map(move |t| (*t, w)))
            .map(|(t, w)| {
                let q: Box<dyn Query> = Box::new(TermQuery::new(
                    Term::from_field_text(self.fields.name, &scoped_word(t, w)),
                    IndexRecordOption::WithFreqs,
                ));
                (Occur::Should, q)
            })
            .collect();
        let text: Box<dyn Query> = Box::new(BooleanQuery::new(text));
        let query: Box<dyn Query> = match self.filter_query(filter) {
            Some(f) => Box::new(BooleanQuery::new(vec![
                (Occur::Must, text),
                (Occur::Must, f),
            ])),
            None => text,
        };
        // Ties in score are ordered by id, ascending — the order the
        // merge with records outside the index uses — so which of several
        // tied documents come back never depends on the index's layout.
        let collector = TopByScore {
            limit,
            columns: searcher
                .segment_readers()
                .iter()
                .map(|s| s.segment_id())
                .zip(self.columns(searcher)?)
                .collect(),
        };
        searcher
            .search_with_statistics_provider(query.as_ref(), &collector, stats)
            .map_err(search_err)
    }

    /// A document's tenant, id and name length, from its fast fields.
    fn doc_facts(&self, searcher: &Searcher, addr: DocAddress) -> Result<(Tenant, Id, u64)> {
        let columns = self.columns(searcher)?;
        columns
            .get(addr.segment_ord as usize)
            .ok_or_else(|| Error::corruption("name index", "a hit in no segment"))?
            .facts(addr.doc_id)
    }

    /// Every live document: (tenant, id, name length).
    fn live_docs(&self, searcher: &Searcher) -> Result<Vec<(Tenant, Id, u64)>> {
        let mut out = Vec::new();
        for (segment, columns) in searcher
            .segment_readers()
            .iter()
            .zip(self.columns(searcher)?)
        {
            for doc in segment.doc_ids_alive() {
                out.push(columns.facts(doc)?);
            }
        }
        Ok(out)
    }

    /// Every live document as (tenant, id), for checks.
    pub fn all_ids(&self) -> Result<Vec<(Tenant, Id)>> {
        Ok(self
            .live_docs(&self.searcher())?
            .into_iter()
            .map(|(t, id, _)| (t, id))
            .collect())
    }
}

/// BM25 statistics of one search: within its tenants, over the records as
/// its searcher and its pending records stand.
pub struct TenantStats {
    docs: u64,
    tokens: u64,
    /// The query's words → documents holding them.
    df: HashMap<String, u64>,
    name: Field,
}

impl TenantStats {
    /// BM25 of a name outside the index, as tantivy would score it inside.
    pub fn score(&self, query_words: &[String], doc_words: &[String]) -> f32 {
        let avg = (self.tokens as f32 / self.docs as f32).max(f32::MIN_POSITIVE);
        let fieldnorm =
            tantivy::fieldnorm::FieldNormReader::fieldnorm_to_id(doc_words.len() as u32);
        let mut score = 0.0;
        let mut seen: Vec<&String> = Vec::new();
        for w in query_words {
            if seen.contains(&w) {
                continue;
            }
            seen.push(w);
            let tf = doc_words.iter().filter(|d| *d == w).count() as u32;
            if tf == 0 {
                continue;
            }
            let df = self.df.get(w).copied().unwrap_or(0);
            score += Bm25Weight::for_one_term(df, self.docs, avg).score(fieldnorm, tf);
        }
        score
    }
}

impl Bm25StatisticsProvider for TenantStats {
    fn total_num_tokens(&self, _field: Field) -> tantivy::Result<u64> {
        Ok(self.tokens)
    }

    fn total_num_docs(&self) -> tantivy::Result<u64> {
        Ok(self.docs)
    }

    fn doc_freq(&self, term: &Term) -> tantivy::Result<u64> {
        if term.field() != self.name {
            return Ok(0);
        }
        // Scored as the word across the search's tenants.
        Ok(term
            .value()
            .as_str()
            .and_then(unscoped)
            .and_then(|w| self.df.get(w))
            .copied()
            .unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(tenant: u128, name: &str) -> NameDoc {
        NameDoc {
            tenant: Tenant::from_raw(tenant),
            id: Id::generate(Dim::Thing),
            kind: "lesson".into(),
            status: "draft".into(),
            name: name.into(),
        }
    }

    #[test]
    fn a_tenant_term_is_its_id_in_32_hex_digits() {
        for raw in [
            0,
            1,
            0xabc,
            u128::MAX,
            0x0123_4567_89ab_cdef_fedc_ba98_7654_3210,
        ] {
            assert_eq!(tenant_term(Tenant::from_raw(raw)), format!("{raw:032x}"));
        }
    }

    #[test]
    fn a_query_returns_only_its_tenants_documents() {
        let dir = tempfile::tempdir().unwrap();
        let (index, mark, existed) = NameIndex::open(dir.path()).unwrap();
        assert_eq!((mark, existed), (0, false));
        let ours: Vec<NameDoc> = (0..5)
            .map(|i| doc(1, &format!("shared word {i}")))
            .collect();
        for d in &ours {
            index.upsert(d).unwrap();
        }
        for i in 0..50 {
            index.upsert(&doc(2, &format!("shared word {i}"))).unwrap();
        }
        index.commit(7).unwrap();
        let searcher = index.searcher();
        let filter = NameFilter {
            tenants: vec![Tenant::from_raw(1)],
            ..Default::default()
        };
        let words = index.words("shared");
        let stats = index.stats(&searcher, &filter, &words, &[], &[]).unwrap();
        let hits = index
            .query(&searcher, &stats, &words, &filter, 100)
            .unwrap();
        let mut got: Vec<Id> = hits.iter().map(|h| h.1).collect();
        let mut want: Vec<Id> = ours.iter().map(|d| d.id).collect();
        got.sort();
        want.sort();
        assert_eq!(got, want);
        // Tenant 1's statistics: 5 documents, not 55.
        assert_eq!(stats.total_num_docs().unwrap(), 5);
        assert_eq!(
            stats
                .doc_freq(&Term::from_field_text(
                    index.fields.name,
                    &scoped_word(Tenant::from_raw(1), "shared")
                ))
                .unwrap(),
            5
        );
    }

    /// Ties are broken by id whatever order the documents were added in
    /// and however tantivy merged them (the index is sorted by id, which
    /// the collector's strict threshold relies on).
    #[test]
    fn tied_scores_come_back_in_id_order_before_and_after_a_merge() {
        let dir = tempfile::tempdir().unwrap();
        let (index, _, _) = NameIndex::open(dir.path()).unwrap();
        let tenant = Tenant::from_raw(9);
        // Ids spread over the range, added in a scrambled order, five commits.
        let mut docs: Vec<NameDoc> = (0..400u128)
            .map(|i| NameDoc {
                id: Id::from_raw(Dim::Thing, (i * 7_919) % 400 + 1),
                ..doc(
                    9,
                    if i % 3 == 0 {
                        "tied name here"
                    } else {
                        "tied other words"
                    },
                )
            })
            .collect();
        docs.reverse();
        for (n, chunk) in docs.chunks(80).enumerate() {
            for d in chunk {
                index.upsert(d).unwrap();
            }
            index.commit(n as u64 + 1).unwrap();
        }
        let filter = NameFilter {
            tenants: vec![tenant],
            ..Default::default()
        };
        let words = index.words("tied");
        let mut want: Vec<Id> = docs.iter().map(|d| d.id).collect();
        want.sort();
        want.truncate(25);
        let top = |index: &NameIndex| -> Vec<Id> {
            let searcher = index.searcher();
            let stats = index.stats(&searcher, &filter, &words, &[], &[]).unwrap();
            let hits = index.query(&searcher, &stats, &words, &filter, 25).unwrap();
            assert!(hits.iter().all(|h| h.0 == hits[0].0), "all tied");
            hits.iter().map(|h| h.1).collect()
        };
        assert!(index.searcher().segment_readers().len() > 1);
        assert_eq!(top(&index), want);
        let segments = index
            .searcher()
            .segment_readers()
            .iter()
            .map(|s| s.segment_id())
            .collect::<Vec<_>>();
        index.writer.lock().merge(&segments).wait().unwrap();
        index.commit(9).unwrap();
        assert_eq!(index.searcher().segment_readers().len(), 1);
        assert_eq!(top(&index), want);
    }

    #[test]
    fn the_watermark_and_the_totals_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (index, _, _) = NameIndex::open(dir.path()).unwrap();
            index.upsert(&doc(3, "one two three")).unwrap();
            let gone = doc(3, "gone");
            index.upsert(&gone).unwrap();
            index.commit(41).unwrap();
            index.remove(gone.id).unwrap();
            index.commit(42).unwrap();
        }
        let (index, mark, existed) = NameIndex::open(dir.path()).unwrap();
        assert_eq!((mark, existed), (42, true));
        let searcher = index.searcher();
        assert_eq!(
            index
                .tenant_totals(&searcher, &[Tenant::from_raw(3)])
                .unwrap(),
            (1, 3)
        );
        assert_eq!(index.all_ids().unwrap().len(), 1);
    }
}
