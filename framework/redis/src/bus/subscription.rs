//! One consumer of a group on Redis Streams: recovery of its own pending
//! entries, claims of idle entries, blocking reads of new ones, dead
//! letters.

use std::collections::VecDeque;
use std::time::Duration;

use async_trait::async_trait;
use composable_rust_core::event_bus::{
    BusMessage, DeadLetterInfo, EventBusError, MessageId, SubscribeOptions, Subscription, Topic,
};
use redis::aio::ConnectionManager;
use std::time::Instant;

use super::wire::{self, Entry, Fields, PendingEntry};
use super::{MAX_BLOCK, METRICS, RedisStreamsEventBus, unexpected};

/// The most messages one receive asks Redis for.
const MAX_RECEIVE: usize = 100_000;

/// How often idle entries are looked for, at most and at least.
const MIN_CLAIM_INTERVAL: Duration = Duration::from_millis(10);
const MAX_CLAIM_INTERVAL: Duration = Duration::from_secs(5);

pub(super) struct RedisSubscription {
    bus: RedisStreamsEventBus,
    /// This subscription's own connection, for `XREADGROUP ... BLOCK`.
    reader: ConnectionManager,
    options: SubscribeOptions,
    /// The stream key of each topic, in the order of `options.topics()`.
    keys: Vec<String>,
    /// Per topic: `None` while recovering (after the last id taken back,
    /// if any), `Some(())` once done.
    recovery: Vec<Recovery>,
    /// Read beyond what a receive could return (several topics).
    overflow: VecDeque<BusMessage>,
    next_claim: Instant,
    claim_interval: Duration,
}

#[derive(Clone)]
enum Recovery {
    /// Still taking back held entries, after this id (exclusive).
    After(Option<String>),
    Done,
}

impl RedisSubscription {
    pub(super) fn new(
        bus: RedisStreamsEventBus,
        reader: ConnectionManager,
        options: SubscribeOptions,
    ) -> Self {
        let keys: Vec<String> = options
            .topics()
            .iter()
            .map(|topic| bus.stream_key(topic))
            .collect();
        let claim_interval =
            (options.visibility_timeout() / 4).clamp(MIN_CLAIM_INTERVAL, MAX_CLAIM_INTERVAL);
        Self {
            recovery: vec![Recovery::After(None); keys.len()],
            bus,
            reader,
            options,
            keys,
            overflow: VecDeque::new(),
            next_claim: Instant::now(),
            claim_interval,
        }
    }

    fn topic(&self, index: usize) -> &Topic {
        &self.options.topics()[index]
    }

    fn recovered(&self) -> bool {
        self.recovery.iter().all(|r| matches!(r, Recovery::Done))
    }

    fn timeout_ms(&self) -> u64 {
        u64::try_from(self.options.visibility_timeout().as_millis()).unwrap_or(u64::MAX)
    }

    /// Runs `XPENDING` on topic `index` with `args` after the group name.
    async fn pending(
        &self,
        index: usize,
        args: &[String],
    ) -> Result<Vec<PendingEntry>, EventBusError> {
        let mut cmd = redis::cmd("XPENDING");
        cmd.arg(&self.keys[index]).arg(self.options.group());
        for arg in args {
            cmd.arg(arg);
        }
        let reply = self.bus.query_value(&cmd, "list pending messages").await?;
        wire::parse_pending(&reply).map_err(|e| unexpected(self.topic(index), e))
    }

    /// Takes back this consumer's (or the group's) entries held before
    /// this subscription, up to `room`; returns whether every topic is
    /// done.
    async fn recover(
        &mut self,
        room: usize,
        out: &mut Vec<BusMessage>,
    ) -> Result<(), EventBusError> {
        for index in 0..self.keys.len() {
            let Recovery::After(after) = self.recovery[index].clone() else {
                continue;
            };
            let room_left = room.saturating_sub(out.len());
            if room_left == 0 {
                return Ok(());
            }
            let start = after.map_or_else(|| "-".to_owned(), |id| format!("({id}"));
            let mut args = vec![start, "+".to_owned(), room_left.to_string()];
            if !self.options.takes_over_pending() {
                args.push(self.options.consumer().to_owned());
            }
            let page = self.pending(index, &args).await?;
            self.recovery[index] = match page.last() {
                Some(last) if page.len() >= room_left => Recovery::After(Some(last.id.clone())),
                _ => Recovery::Done,
            };
            self.take(index, page, 0, out).await?;
        }
        Ok(())
    }

    /// Claims entries idle past the visibility timeout, up to `room`.
    async fn claim_idle(
        &mut self,
        room: usize,
        out: &mut Vec<BusMessage>,
    ) -> Result<(), EventBusError> {
        let timeout = self.timeout_ms();
        let mut full = false;
        for index in 0..self.keys.len() {
            let room_left = room.saturating_sub(out.len());
            if room_left == 0 {
                full = true;
                break;
            }
            let args = [
                "IDLE".to_owned(),
                timeout.to_string(),
                "-".to_owned(),
                "+".to_owned(),
                room_left.to_string(),
            ];
            let page = self.pending(index, &args).await?;
            full |= page.len() >= room_left;
            self.take(index, page, timeout, out).await?;
        }
        self.next_claim = if full {
            // There may be more: look again on the next receive.
            Instant::now()
        } else {
            Instant::now() + self.claim_interval
        };
        Ok(())
    }

    /// Claims `page` (entries of topic `index` idle for at least
    /// `min_idle_ms`) for this consumer: those at the delivery limit go to
    /// the dead-letter topic, the others into `out`.
    async fn take(
        &mut self,
        index: usize,
        page: Vec<PendingEntry>,
        min_idle_ms: u64,
        out: &mut Vec<BusMessage>,
    ) -> Result<(), EventBusError> {
        if page.is_empty() {
            return Ok(());
        }
        let limit = self.options.max_deliveries();
        let (dead, live): (Vec<_>, Vec<_>) = page
            .into_iter()
            .partition(|entry| entry.deliveries >= limit);
        if !live.is_empty() {
            let claimed = self.claim(index, &live, min_idle_ms).await?;
            for (id, fields) in claimed {
                let deliveries = live
                    .iter()
                    .find(|entry| entry.id == id)
                    .map_or(1, |entry| entry.deliveries + 1);
                self.accept(index, id, fields, deliveries, out).await?;
            }
        }
        if !dead.is_empty() {
            let claimed = self.claim(index, &dead, min_idle_ms).await?;
            let mut letters = Vec::new();
            for (id, fields) in claimed {
                let Some(entry) = dead.iter().find(|entry| entry.id == id) else {
                    continue;
                };
                letters.push((id, fields, entry.consumer.clone(), entry.deliveries, None));
            }
            self.dead_letter(index, letters).await?;
        }
        Ok(())
    }

    /// `XCLAIM` of `entries` for this consumer; returns what it won (an
    /// entry another consumer claimed meanwhile is not idle enough).
    async fn claim(
        &self,
        index: usize,
        entries: &[PendingEntry],
        min_idle_ms: u64,
    ) -> Result<Vec<Entry>, EventBusError> {
        let mut cmd = redis::cmd("XCLAIM");
        cmd.arg(&self.keys[index])
            .arg(self.options.group())
            .arg(self.options.consumer())
            .arg(min_idle_ms);
        for entry in entries {
            cmd.arg(&entry.id);
        }
        let reply = self.bus.query_value(&cmd, "claim pending messages").await?;
        let claimed =
            wire::into_entries(reply, "XCLAIM").map_err(|e| unexpected(self.topic(index), e))?;
        // Entries deleted from the stream (trimmed) while pending cannot be
        // delivered: acknowledge them so they leave the pending list.
        let gone: Vec<&str> = claimed
            .iter()
            .filter(|(_, fields)| fields.is_none())
            .map(|(id, _)| id.as_str())
            .collect();
        if !gone.is_empty() {
            self.ack_ids(index, &gone).await?;
        }
        Ok(claimed
            .into_iter()
            .filter_map(|(id, fields)| fields.map(|fields| (id, Some(fields))))
            .collect())
    }

    /// Decodes a delivered entry into `out`; an entry that cannot be decoded
    /// can never be processed, so it goes to the dead-letter topic at once.
    async fn accept(
        &mut self,
        index: usize,
        id: String,
        fields: Option<Fields>,
        deliveries: u32,
        out: &mut Vec<BusMessage>,
    ) -> Result<(), EventBusError> {
        let Some(fields) = fields else {
            return self.ack_ids(index, &[id.as_str()]).await;
        };
        match wire::decode(self.topic(index), id, &fields, deliveries) {
            Ok(message) => {
                out.push(message);
                Ok(())
            }
            Err(error) => {
                let id = match &error {
                    EventBusError::Decode { message_id, .. } => message_id.clone(),
                    _ => String::new(),
                };
                tracing::error!(topic = %self.topic(index), message_id = %id, %error, "undecodable message moved to the dead-letter topic");
                let consumer = self.options.consumer().to_owned();
                self.dead_letter(
                    index,
                    vec![(
                        id,
                        Some(fields),
                        consumer,
                        deliveries,
                        Some(error.to_string()),
                    )],
                )
                .await
            }
        }
    }

    /// Moves entries of topic `index` to its dead-letter topic: `XADD` of
    /// the entry's fields plus where it came from, and `XACK`, in one
    /// `MULTI`/`EXEC`.
    #[allow(clippy::type_complexity)]
    async fn dead_letter(
        &self,
        index: usize,
        letters: Vec<(String, Option<Fields>, String, u32, Option<String>)>,
    ) -> Result<(), EventBusError> {
        if letters.is_empty() {
            return Ok(());
        }
        let topic = self.topic(index);
        let dead_letter_key = self.bus.stream_key(&topic.dead_letter());
        let mut pipeline = redis::pipe();
        pipeline.atomic();
        for (id, fields, consumer, deliveries, error) in &letters {
            let info = DeadLetterInfo {
                topic: topic.clone(),
                group: self.options.group().to_owned(),
                consumer: consumer.clone(),
                message_id: MessageId::new(id.clone()),
                deliveries: *deliveries,
            };
            let info = serde_json::to_vec(&info).map_err(|e| unexpected(topic, e.to_string()))?;
            let xadd = pipeline
                .cmd("XADD")
                .arg(&dead_letter_key)
                .arg("MAXLEN")
                .arg("~")
                .arg(self.bus.max_len())
                .arg("*");
            for (field, value) in fields.iter().flatten() {
                if field != wire::DEAD_LETTER.as_bytes() && field != wire::ERROR.as_bytes() {
                    xadd.arg(field).arg(value);
                }
            }
            xadd.arg(wire::DEAD_LETTER).arg(info);
            if let Some(error) = error {
                xadd.arg(wire::ERROR).arg(error);
            }
            pipeline
                .cmd("XACK")
                .arg(&self.keys[index])
                .arg(self.options.group())
                .arg(id)
                .ignore();
            tracing::warn!(
                topic = %topic,
                group = self.options.group(),
                message_id = %id,
                deliveries,
                "message moved to the dead-letter topic after too many deliveries"
            );
        }
        let _: redis::Value = self
            .bus
            .redis
            .query_pipeline(&pipeline, "move a message to the dead-letter topic")
            .await?;
        METRICS.dead_lettered(topic.as_str(), self.options.group(), letters.len());
        Ok(())
    }

    async fn ack_ids(&self, index: usize, ids: &[&str]) -> Result<(), EventBusError> {
        let _: u64 = self
            .bus
            .redis
            .query(
                redis::cmd("XACK")
                    .arg(&self.keys[index])
                    .arg(self.options.group())
                    .arg(ids),
                "acknowledge messages",
            )
            .await?;
        Ok(())
    }

    /// `XREADGROUP` of new entries (up to `count` per topic), blocking up
    /// to `block` when it is at least a millisecond; what does not fit in
    /// `room` goes to the overflow.
    async fn read_new(
        &mut self,
        room: usize,
        block: Duration,
        out: &mut Vec<BusMessage>,
    ) -> Result<(), EventBusError> {
        let count = room.saturating_sub(out.len());
        if count == 0 {
            return Ok(());
        }
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(self.options.group())
            .arg(self.options.consumer())
            .arg("COUNT")
            .arg(count);
        let block_ms = block.as_millis();
        if block_ms > 0 {
            cmd.arg("BLOCK")
                .arg(u64::try_from(block_ms).unwrap_or(u64::MAX));
        }
        cmd.arg("STREAMS").arg(&self.keys);
        for _ in &self.keys {
            cmd.arg(">");
        }
        let reply: Result<redis::Value, redis::RedisError> =
            cmd.query_async(&mut self.reader).await;
        let reply = match reply {
            Ok(reply) => reply,
            Err(error) if error.code() == Some("NOGROUP") => {
                // The stream or group was deleted (e.g. by hand): create it
                // again and read on the next round.
                self.bus.ensure_groups(&self.options).await?;
                return Ok(());
            }
            Err(error) => {
                return Err(self.bus.redis.error(error, "read new messages").into());
            }
        };
        let streams = wire::into_streams(reply).map_err(|e| unexpected(self.topic(0), e))?;
        let mut received = Vec::new();
        for (key, entries) in streams {
            let Some(index) = self.keys.iter().position(|k| *k == key) else {
                continue;
            };
            for (id, fields) in entries {
                self.accept(index, id, fields, 1, &mut received).await?;
            }
        }
        for message in received {
            if out.len() < room {
                out.push(message);
            } else {
                self.overflow.push_back(message);
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Subscription for RedisSubscription {
    fn options(&self) -> &SubscribeOptions {
        &self.options
    }

    async fn receive(
        &mut self,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<BusMessage>, EventBusError> {
        // Every exit of the receive below is counted here, once.
        let received: Result<Vec<BusMessage>, EventBusError> = async {
            let max = max.clamp(1, MAX_RECEIVE);
            let deadline = Instant::now() + wait;
            let mut out: Vec<BusMessage> = Vec::new();
            while out.len() < max {
                let Some(message) = self.overflow.pop_front() else {
                    break;
                };
                out.push(message);
            }
            if out.len() >= max {
                return Ok(out);
            }
            // New messages only once every held one is back.
            while !self.recovered() && out.is_empty() {
                self.recover(max, &mut out).await?;
            }
            if !out.is_empty() {
                return Ok(out);
            }
            loop {
                let now = Instant::now();
                if now >= self.next_claim {
                    self.claim_idle(max, &mut out).await?;
                }
                let now = Instant::now();
                let block = if out.is_empty() {
                    deadline
                        .saturating_duration_since(now)
                        .min(self.next_claim.saturating_duration_since(now))
                        .min(MAX_BLOCK)
                } else {
                    Duration::ZERO
                };
                self.read_new(max, block, &mut out).await?;
                if !out.is_empty() || Instant::now() >= deadline {
                    return Ok(out);
                }
            }
        }
        .await;
        if let Ok(messages) = &received {
            METRICS.delivered(self.options.group(), messages);
        }
        received
    }

    async fn ack_many(&mut self, messages: &[BusMessage]) -> Result<(), EventBusError> {
        if messages.is_empty() {
            return Ok(());
        }
        let mut pipeline = redis::pipe();
        let mut any = false;
        for (index, topic) in self.options.topics().iter().enumerate() {
            let ids: Vec<&str> = messages
                .iter()
                .filter(|message| &message.topic == topic)
                .map(|message| message.id.as_str())
                .collect();
            if !ids.is_empty() {
                pipeline
                    .cmd("XACK")
                    .arg(&self.keys[index])
                    .arg(self.options.group())
                    .arg(ids)
                    .ignore();
                any = true;
            }
        }
        if any {
            let _: redis::Value = self
                .bus
                .redis
                .query_pipeline(&pipeline, "acknowledge messages")
                .await?;
        }
        METRICS.acked(self.options.group(), messages);
        Ok(())
    }

    async fn backlog(&mut self) -> Result<Option<u64>, EventBusError> {
        let mut total = 0;
        for index in 0..self.keys.len() {
            let reply = self
                .bus
                .query_value(
                    redis::cmd("XINFO").arg("GROUPS").arg(&self.keys[index]),
                    "read a consumer group's lag",
                )
                .await?;
            match wire::parse_group_lag(&reply, self.options.group())
                .map_err(|e| unexpected(self.topic(index), e))?
            {
                Some(Some(lag)) => total += lag,
                _ => return Ok(None),
            }
        }
        METRICS.lag(self.options.group(), total);
        Ok(Some(total))
    }
}
