//! `subscribe` and `unsubscribe`: a connection's subscriptions. The worker
//! starts and ends them in request order; the writer takes their event
//! lines between answers (`connection::Feed`) while the client keeps up.
//! Events wait in the subscription's own bounded queue (`db::subscriptions`),
//! never in the connection's buffer.

use std::sync::Arc;

use serde_json::{Map, Value as Json, json};
use tokio::sync::Notify;

use crate::db::{Ended, Subscription, SubscriptionReader};
use crate::error::{Error, ErrorCode};
use crate::query::run::Runner;
use crate::server::connection::{Feed, Out};
use crate::server::limits::Limits;
use crate::server::protocol;

/// Events a feed hands the writer at a time (it finishes the commit it
/// is in).
const TAKE: usize = 256;

/// The subscriptions of one connection, held by its worker: dropping it
/// ends them all.
pub(super) struct Subscriptions {
    open: Vec<Open>,
    next_key: u64,
    /// Tells the writer that a feed has lines.
    wake: Arc<Notify>,
}

struct Open {
    id: Json,
    key: u64,
    subscription: Subscription,
}

impl Subscriptions {
    pub fn new(wake: Arc<Notify>) -> Subscriptions {
        Subscriptions {
            open: Vec::new(),
            next_key: 0,
            wake,
        }
    }

    /// How many are open (counted as work in flight: a subscribed
    /// connection is not idle).
    pub fn len(&self) -> usize {
        self.open.len()
    }

    /// `{"op":"subscribe","text":"EVENTS …","after":N}`: the ack, then the
    /// writer takes the subscription's lines; or an error answer.
    pub fn subscribe(
        &mut self,
        runner: &mut Runner<'_>,
        limits: &Limits,
        id: &Json,
        text: &str,
        after: Option<u64>,
    ) -> Out {
        // Ended ones (cancelled, failed) free their id and their slot.
        self.open.retain(|o| !o.subscription.is_over());
        if self.open.iter().any(|o| o.id == *id) {
            let e = Error::invalid(format!(
                "a subscription with id {id} is open on this connection: unsubscribe it or use another id"
            ));
            return Out::Line(protocol::line(&protocol::error(id, &e, None)));
        }
        if self.open.len() >= limits.max_subscriptions {
            let e = Error::new(
                ErrorCode::LimitReached,
                format!(
                    "a connection has at most {} subscriptions open",
                    limits.max_subscriptions
                ),
            );
            return Out::Line(protocol::line(&protocol::error(id, &e, None)));
        }
        let wake = self.wake.clone();
        let subscribed = runner.subscribe(
            text,
            after,
            limits.subscription_queue,
            Arc::new(move || wake.notify_one()),
        );
        let subscription = match subscribed {
            Ok(s) => s,
            Err(e) => return Out::Line(protocol::line(&protocol::error(id, &e, None))),
        };
        self.next_key += 1;
        let key = self.next_key;
        let ack = protocol::ok(
            id,
            Map::from_iter([
                ("sub".to_string(), id.clone()),
                ("seq".to_string(), json!(subscription.start())),
            ]),
        );
        let feed = EventFeed {
            key,
            id: id.clone(),
            prefix: protocol::event_prefix(id),
            reader: subscription.reader(),
        };
        self.open.push(Open {
            id: id.clone(),
            key,
            subscription,
        });
        Out::Start(protocol::line(&ack), Box::new(feed))
    }

    /// `{"op":"unsubscribe","sub":3}`: ends subscription 3; no line of it
    /// follows the answer.
    pub fn unsubscribe(&mut self, id: &Json, sub: &Json) -> Out {
        // One that ended on its own is gone (its last line still comes).
        self.open.retain(|o| !o.subscription.is_over());
        let Some(i) = self.open.iter().position(|o| o.id == *sub) else {
            let e = Error::not_found(format!("no subscription with id {sub} is open"));
            return Out::Line(protocol::line(&protocol::error(id, &e, None)));
        };
        let open = self.open.remove(i);
        drop(open.subscription);
        let answer = protocol::ok(
            id,
            Map::from_iter([("unsubscribed".to_string(), sub.clone())]),
        );
        Out::Stop(protocol::line(&answer), open.key)
    }
}

/// The writer's side of one subscription.
struct EventFeed {
    key: u64,
    id: Json,
    /// `{"id":…,"event":`
    prefix: Vec<u8>,
    reader: SubscriptionReader,
}

impl Feed for EventFeed {
    fn key(&self) -> u64 {
        self.key
    }

    fn fill(&mut self, buf: &mut Vec<u8>) -> bool {
        let taken = self.reader.take(TAKE);
        for event in &taken.events {
            buf.extend_from_slice(&self.prefix);
            buf.extend_from_slice(event.json.as_bytes());
            buf.extend_from_slice(b"}\n");
        }
        let Some(ended) = taken.ended else {
            return true;
        };
        let (error, last_seq) = match ended {
            Ended::Cancelled { last_seq, message } => {
                (Error::new(ErrorCode::Cancelled, message), last_seq)
            }
            Ended::Failed { last_seq, error } => (error, last_seq),
        };
        buf.extend_from_slice(&protocol::line(&protocol::subscription_ended(
            &self.id, &error, last_seq,
        )));
        false
    }
}
