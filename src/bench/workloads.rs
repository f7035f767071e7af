//! The standard workloads: each operation (`Query`) with its seeded
//! parameters, its OQL text, and the check of its answer against a direct
//! computation from the generated data (`Truth`). A door (api, oql, tcp)
//! turns a `Query` into an `Answer`; `check` says whether it is right.

use std::collections::{HashMap, HashSet};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value as Json, json};

use crate::bench::generator::{THING_TYPES, Truth, WORDS, near};
use crate::bench::limits::exact_top10;
use crate::model::{Id, Millis, Status};

/// The workloads, in the order the report lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Workload {
    W1,
    Q1,
    Q2,
    Q3,
    Q4,
    Q5Frequent,
    Q5Rare,
    Q6,
    Q7,
}

impl Workload {
    /// W1 runs last: its new names wait for the indexer, and a name search
    /// meanwhile reads them from the store (see docs/bench.md).
    pub const ALL: [Workload; 9] = [
        Workload::Q1,
        Workload::Q2,
        Workload::Q3,
        Workload::Q4,
        Workload::Q5Frequent,
        Workload::Q5Rare,
        Workload::Q6,
        Workload::Q7,
        Workload::W1,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Workload::W1 => "W1",
            Workload::Q1 => "Q1",
            Workload::Q2 => "Q2",
            Workload::Q3 => "Q3",
            Workload::Q4 => "Q4",
            Workload::Q5Frequent => "Q5 frequent",
            Workload::Q5Rare => "Q5 rare",
            Workload::Q6 => "Q6",
            Workload::Q7 => "Q7",
        }
    }

    pub fn what(self) -> &'static str {
        match self {
            Workload::W1 => "thing + owns + events + usage, one commit",
            Workload::Q1 => "a thing by id",
            Workload::Q2 => "things by type and status, LIMIT 50",
            Workload::Q3 => "names of what a person owns",
            Workload::Q4 => "distinct things owned by the people a person follows",
            Workload::Q5Frequent => "name search top 10, a frequent word",
            Workload::Q5Rare => "name search top 10, a rare word",
            Workload::Q6 => "vector top 10 within one org",
            Workload::Q7 => "a thing's events in a time range, newest first, LIMIT 20",
        }
    }
}

/// One operation with its parameters.
#[derive(Debug, Clone)]
pub enum Query {
    W1 {
        n: u64,
    },
    Q1 {
        thing: Id,
    },
    Q2 {
        kind: &'static str,
        status: Status,
    },
    Q3 {
        person: Id,
    },
    Q4 {
        person: Id,
    },
    Q5 {
        word: &'static str,
    },
    Q6 {
        vector: Vec<f32>,
    },
    Q7 {
        thing: Id,
        since: Millis,
        until: Millis,
    },
}

/// What a door answered, in a form every door can give.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Done,
    Ids(Vec<Id>),
    Names(Vec<String>),
    Count(u64),
}

const W1_TEXT: [&str; 4] = [
    "BEGIN",
    "LET $t = CREATE THING digital_product $name",
    "CONNECT $me -[owns]-> $t",
    "COMMIT",
];
const Q1_TEXT: &str = "MATCH (t) WHERE t.id = $id RETURN t.name";
const Q3_TEXT: &str = "MATCH (p)-[:owns]->(t) WHERE p.id = $id RETURN t.name";
const Q4_TEXT: &str =
    "MATCH (c)-[:following]->(f)-[:owns]->(x) WHERE c.id = $id RETURN count(DISTINCT x)";
const Q5_TEXT: &str = "SEARCH THINGS $q RETURN id LIMIT 10";
const Q6_TEXT: &str = "SEARCH KNOWLEDGE NEAREST $v K 10 RETURN id";
const Q7_TEXT: &str = "EVENTS WHERE target = $t SINCE $a UNTIL $b LIMIT 20";

impl Query {
    /// The OQL statements of this operation and their parameters (the
    /// thing type and status of Q2 are written into its text: a label and
    /// the status index need them there).
    pub fn oql(&self) -> (Vec<String>, Json) {
        let one = |text: &str, params: Json| (vec![text.to_string()], params);
        match self {
            Query::W1 { n } => (
                W1_TEXT.iter().map(|s| s.to_string()).collect(),
                json!({"name": format!("bench item {n}")}),
            ),
            Query::Q1 { thing } => one(Q1_TEXT, json!({"id": thing.to_string()})),
            Query::Q2 { kind, status } => one(
                &format!(
                    "MATCH (t:{kind}) WHERE t.status = \"{}\" RETURN t.id, t.name LIMIT 50",
                    status.as_str()
                ),
                json!({}),
            ),
            Query::Q3 { person } => one(Q3_TEXT, json!({"id": person.to_string()})),
            Query::Q4 { person } => one(Q4_TEXT, json!({"id": person.to_string()})),
            Query::Q5 { word } => one(Q5_TEXT, json!({"q": word})),
            Query::Q6 { vector } => one(Q6_TEXT, json!({"v": vector})),
            Query::Q7 {
                thing,
                since,
                until,
            } => one(
                Q7_TEXT,
                json!({"t": thing.to_string(), "a": since, "b": until}),
            ),
        }
    }

    /// The answer in the rows of the operation's last statement.
    pub fn answer_of_rows(&self, columns: &[String], rows: &[Vec<Json>]) -> Answer {
        let col = columns.iter().position(|c| c == "id").unwrap_or(0);
        let ids = || {
            Answer::Ids(
                rows.iter()
                    .filter_map(|r| r.get(col)?.as_str()?.parse().ok())
                    .collect(),
            )
        };
        let names = || {
            Answer::Names(
                rows.iter()
                    .filter_map(|r| Some(r.first()?.as_str()?.to_string()))
                    .collect(),
            )
        };
        match self {
            Query::W1 { .. } => Answer::Done,
            Query::Q1 { .. } | Query::Q3 { .. } => names(),
            Query::Q4 { .. } => Answer::Count(
                rows.first()
                    .and_then(|r| r.first()?.as_u64())
                    .unwrap_or(u64::MAX),
            ),
            Query::Q2 { .. } | Query::Q5 { .. } | Query::Q6 { .. } | Query::Q7 { .. } => ids(),
        }
    }
}

/// The seeded parameters of each workload, and the expected answers.
pub struct Plan<'t> {
    pub truth: &'t Truth,
    by_id: HashMap<Id, usize>,
    /// word → things of the measured org whose name has it.
    by_word: HashMap<&'static str, Vec<Id>>,
}

impl<'t> Plan<'t> {
    pub fn new(truth: &'t Truth) -> Plan<'t> {
        let by_id = truth
            .things
            .iter()
            .enumerate()
            .map(|(i, t)| (t.id, i))
            .collect();
        let mut by_word: HashMap<&'static str, Vec<Id>> = HashMap::new();
        for t in &truth.things {
            let words: HashSet<&str> = t.name.split(' ').collect();
            for w in WORDS.iter().filter(|w| words.contains(**w)) {
                by_word.entry(w).or_default().push(t.id);
            }
        }
        Plan {
            truth,
            by_id,
            by_word,
        }
    }

    /// `count` operations of `workload`, from `seed`.
    pub fn queries(&self, workload: Workload, count: usize, seed: u64) -> Vec<Query> {
        let mut rng = StdRng::seed_from_u64(seed ^ workload as u64);
        let t = self.truth;
        let mut rare: Vec<&'static str> = WORDS
            .iter()
            .copied()
            .filter(|w| self.by_word.get(w).is_some_and(|ids| ids.len() <= 5))
            .collect();
        if rare.is_empty() {
            rare = WORDS
                .iter()
                .rev()
                .copied()
                .filter(|w| self.by_word.contains_key(w))
                .take(1)
                .collect();
        }
        let thing = |rng: &mut StdRng| t.things[rng.gen_range(0..t.things.len())].id;
        // Anyone but the acting owner (index 0), whose W1 writes add owns.
        let person = |rng: &mut StdRng| t.people[rng.gen_range(1..t.people.len())];
        (0..count)
            .map(|n| match workload {
                Workload::W1 => Query::W1 { n: n as u64 },
                Workload::Q1 => Query::Q1 {
                    thing: thing(&mut rng),
                },
                Workload::Q2 => Query::Q2 {
                    kind: THING_TYPES[rng.gen_range(0..THING_TYPES.len())],
                    status: Status::ALL[rng.gen_range(0..Status::ALL.len())],
                },
                Workload::Q3 => Query::Q3 {
                    person: person(&mut rng),
                },
                Workload::Q4 => Query::Q4 {
                    person: person(&mut rng),
                },
                Workload::Q5Frequent => Query::Q5 {
                    word: WORDS[rng.gen_range(0..5)],
                },
                Workload::Q5Rare => Query::Q5 {
                    word: rare[rng.gen_range(0..rare.len().max(1))],
                },
                Workload::Q6 => {
                    let centre = rng.gen_range(0..t.centres.len());
                    Query::Q6 {
                        vector: near(&mut rng, &t.centres[centre]),
                    }
                }
                Workload::Q7 => {
                    // Half of them hot things, whose many events LIMIT cuts.
                    let i = if rng.gen_bool(0.5) {
                        (rng.gen_range(0..t.things.len()) / 100) * 100
                    } else {
                        rng.gen_range(0..t.things.len())
                    };
                    let at = t.things[i].created_at;
                    let since = at + rng.gen_range(0..10) * 3_600_000;
                    Query::Q7 {
                        thing: t.things[i].id,
                        since,
                        until: since + 25 * 3_600_000,
                    }
                }
            })
            .collect()
    }

    /// The mixed run: 90 % reads spread over the read workloads, 10 % W1.
    pub fn mixed(&self, count: usize, seed: u64) -> Vec<Query> {
        let mut rng = StdRng::seed_from_u64(seed ^ 0x4d49_5845);
        let mut pools: Vec<Vec<Query>> = Workload::ALL
            .iter()
            .map(|w| self.queries(*w, count, seed ^ 0x11))
            .collect();
        let w1 = Workload::ALL.len() - 1;
        (0..count)
            .map(|_| {
                let w = if rng.gen_bool(0.1) {
                    w1
                } else {
                    rng.gen_range(0..w1)
                };
                pools[w].pop().unwrap_or(Query::W1 { n: 0 })
            })
            .collect()
    }

    /// Ok(recall) when `answer` is right (recall is 1 but for Q6, whose
    /// recall@10 against exact search the caller averages); Err says how
    /// it is wrong.
    pub fn check(&self, query: &Query, answer: &Answer) -> Result<f64, String> {
        let expected = match query {
            Query::W1 { .. } => Answer::Done,
            Query::Q1 { thing } => Answer::Names(
                self.by_id
                    .get(thing)
                    .map(|i| vec![self.truth.things[*i].name.clone()])
                    .unwrap_or_default(),
            ),
            Query::Q2 { kind, status } => {
                let mut ids: Vec<Id> = self
                    .truth
                    .things
                    .iter()
                    .filter(|t| t.kind == *kind && t.status == *status)
                    .map(|t| t.id)
                    .collect();
                ids.sort();
                ids.truncate(50);
                return compare(&Answer::Ids(ids), &sorted(answer));
            }
            Query::Q3 { person } => {
                let mut names: Vec<String> = self.owned(*person).map(|t| t.name.clone()).collect();
                names.sort();
                return compare(&Answer::Names(names), &sorted(answer));
            }
            Query::Q4 { person } => Answer::Count(self.friends_things(*person)),
            Query::Q5 { word } => return self.check_search(word, answer),
            Query::Q6 { vector } => return Ok(self.recall(vector, answer)),
            Query::Q7 {
                thing,
                since,
                until,
            } => Answer::Ids(self.events(*thing, *since, *until)),
        };
        compare(&expected, answer)
    }

    /// How many records a read's answer holds (what its raw limit must
    /// read too); None for W1, Q5 and Q6.
    pub fn expected_count(&self, query: &Query) -> Option<usize> {
        Some(match query {
            Query::Q1 { thing } => usize::from(self.by_id.contains_key(thing)),
            Query::Q2 { kind, status } => self
                .truth
                .things
                .iter()
                .filter(|t| t.kind == *kind && t.status == *status)
                .count()
                .min(50),
            Query::Q3 { person } => self.owned(*person).count(),
            Query::Q4 { person } => self.friends_things(*person) as usize,
            Query::Q7 {
                thing,
                since,
                until,
            } => self.events(*thing, *since, *until).len(),
            Query::W1 { .. } | Query::Q5 { .. } | Query::Q6 { .. } => return None,
        })
    }

    fn owned(&self, person: Id) -> impl Iterator<Item = &crate::model::Thing> {
        self.truth
            .owns
            .get(&person)
            .into_iter()
            .flatten()
            .filter_map(|id| self.by_id.get(id).map(|i| &self.truth.things[*i]))
    }

    pub fn friends_things(&self, person: Id) -> u64 {
        let mut seen: HashSet<Id> = HashSet::new();
        for f in self.truth.following.get(&person).into_iter().flatten() {
            seen.extend(self.truth.owns.get(f).into_iter().flatten().copied());
        }
        seen.len() as u64
    }

    /// Newest first, at most 20.
    pub fn events(&self, thing: Id, since: Millis, until: Millis) -> Vec<Id> {
        let mut ids: Vec<Id> = self
            .truth
            .events
            .get(&thing)
            .into_iter()
            .flatten()
            .filter(|(_, at)| *at >= since && *at <= until)
            .map(|(id, _)| *id)
            .collect();
        ids.sort_by(|a, b| b.cmp(a));
        ids.truncate(20);
        ids
    }

    /// Every hit has the word, and there are as many as there can be.
    fn check_search(&self, word: &str, answer: &Answer) -> Result<f64, String> {
        let having: HashSet<Id> = self
            .by_word
            .get(word)
            .into_iter()
            .flatten()
            .copied()
            .collect();
        let Answer::Ids(ids) = answer else {
            return Err(format!("expected ids, got {answer:?}"));
        };
        if ids.len() != having.len().min(10) {
            return Err(format!(
                "{} hits for {word:?}, expected {}",
                ids.len(),
                having.len().min(10)
            ));
        }
        match ids.iter().find(|id| !having.contains(id)) {
            Some(id) => Err(format!("{id} does not have the word {word:?}")),
            None => Ok(1.0),
        }
    }

    /// The 10 nearest chunks by exact search.
    pub fn exact(&self, vector: &[f32]) -> Vec<Id> {
        exact_top10(&self.truth.chunks, vector)
    }

    fn recall(&self, vector: &[f32], answer: &Answer) -> f64 {
        let exact = self.exact(vector);
        let Answer::Ids(ids) = answer else {
            return 0.0;
        };
        if exact.is_empty() {
            return 1.0;
        }
        let found = ids.iter().filter(|id| exact.contains(id)).count();
        found as f64 / exact.len() as f64
    }
}

fn sorted(answer: &Answer) -> Answer {
    match answer {
        Answer::Ids(ids) => {
            let mut ids = ids.clone();
            ids.sort();
            Answer::Ids(ids)
        }
        Answer::Names(names) => {
            let mut names = names.clone();
            names.sort();
            Answer::Names(names)
        }
        other => other.clone(),
    }
}

fn compare(expected: &Answer, got: &Answer) -> Result<f64, String> {
    if expected == got {
        Ok(1.0)
    } else {
        let short = |a: &Answer| {
            let text = format!("{a:?}");
            text.chars().take(200).collect::<String>()
        };
        Err(format!("expected {}, got {}", short(expected), short(got)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::generator::{Shape, generate};

    #[test]
    fn a_wrong_answer_is_caught() {
        let shape = Shape {
            orgs: 1,
            people: 20,
            things: 500,
            chunks: 50,
        };
        let g = generate(shape, 3, &mut std::io::sink()).unwrap();
        let plan = Plan::new(&g.truth);
        let q = &plan.queries(Workload::Q4, 1, 1)[0];
        let Query::Q4 { person } = q else {
            panic!("{q:?}")
        };
        let right = Answer::Count(plan.friends_things(*person));
        assert_eq!(plan.check(q, &right), Ok(1.0));
        let Answer::Count(n) = right else { panic!() };
        assert!(plan.check(q, &Answer::Count(n + 1)).is_err());
        // Q7: the right events in the wrong order are wrong.
        for q in plan.queries(Workload::Q7, 50, 2) {
            let Query::Q7 {
                thing,
                since,
                until,
            } = q
            else {
                panic!()
            };
            let mut ids = plan.events(thing, since, until);
            if ids.len() > 1 {
                assert!(plan.check(&q, &Answer::Ids(ids.clone())).is_ok());
                ids.reverse();
                assert!(plan.check(&q, &Answer::Ids(ids)).is_err());
                return;
            }
        }
        panic!("no Q7 with two events");
    }

    #[test]
    fn recall_is_measured_against_exact_search() {
        let shape = Shape {
            orgs: 1,
            people: 12,
            things: 100,
            chunks: 200,
        };
        let g = generate(shape, 4, &mut std::io::sink()).unwrap();
        let plan = Plan::new(&g.truth);
        let q = &plan.queries(Workload::Q6, 1, 1)[0];
        let Query::Q6 { vector } = q else { panic!() };
        let exact = plan.exact(vector);
        assert_eq!(plan.check(q, &Answer::Ids(exact.clone())), Ok(1.0));
        assert_eq!(plan.check(q, &Answer::Ids(exact[..5].to_vec())), Ok(0.5));
    }
}
