//! `Membership`: one node's SWIM membership (foca underneath), driven by packets and timers, with outputs
//! returned as [`GossipAction`]s. No I/O, no clock: `now_ms` is an argument and the rng is seeded by the caller.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use foca::{Foca, Notification, OwnedNotification, Timer};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::broadcast::{BroadcastItem, Handler, Inbox};
use super::config::GossipConfig;
use super::identity::{NodeId, NODE_NAME_BYTES_MAX, TAG_BYTES_MAX};
use super::members::{Member, MemberEvent, MemberStatus};
use super::rng::GossipRng;
use super::user_event::{UserEvent, USER_EVENT_BYTES_MAX};
use super::wire::WireCodec;

/// Leave intents remembered for members not (yet) declared down; the oldest address is forgotten first.
pub const LEAVE_INTENTS_MAX: usize = 4096;
/// Longest header-only packet (two identities at their byte limits, plus framing).
const TURN_UNDEAD_BYTES_MAX: usize = 2 * (NODE_NAME_BYTES_MAX + 2 * TAG_BYTES_MAX + 64) + 16;
/// Members asked to let us back in after the cluster declared us down (besides foca's own announces).
const REJOIN_ANNOUNCES: usize = 3;

/// A timer foca asked for; hand it back to [`Membership::handle_timer`] when it is due. Stale ones (from
/// before a rejoin or a leave) are recognised and ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GossipTimer(Timer<NodeId>);

/// One output of a `Membership` call, in the order the driver should carry them out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GossipAction {
    /// Send `bytes` as one UDP datagram to `to`.
    Send { to: SocketAddr, bytes: Vec<u8> },
    /// Call `handle_timer(timer, t)` at some `t >= at_ms`.
    SetTimer { at_ms: u64, timer: GossipTimer },
    /// The membership changed, or a user event arrived.
    Event(MemberEvent),
}

/// Errors of the commands. Input from the network never errors: bad packets are dropped and logged.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GossipError {
    #[error("this node has left the cluster")]
    Left,
    /// Consul's (serf's) wording.
    #[error("user event exceeds configured limit of {USER_EVENT_BYTES_MAX} bytes before encoding")]
    UserEventTooLarge,
    #[error("gossip: {0}")]
    Foca(String),
}

/// What foca produced during one call (foca's `Runtime`, accumulated).
#[derive(Default)]
struct Collected {
    sends: Vec<(SocketAddr, Vec<u8>)>,
    timers: Vec<(Duration, Timer<NodeId>)>,
    notifications: Vec<OwnedNotification<NodeId>>,
}

impl foca::Runtime<NodeId> for Collected {
    fn notify(&mut self, notification: Notification<'_, NodeId>) {
        self.notifications.push(notification.to_owned());
    }
    fn send_to(&mut self, to: NodeId, data: &[u8]) {
        self.sends.push((to.addr(), data.to_vec()));
    }
    fn submit_after(&mut self, event: Timer<NodeId>, after: Duration) {
        self.timers.push((after, event));
    }
}

/// One node's gossip membership.
///
/// Methods, by kind (quinn-proto's scheme):
/// - input: [`handle_packet`](Self::handle_packet) for every datagram received on the gossip port, and
///   [`handle_timer`](Self::handle_timer) for every [`GossipTimer`] that fell due;
/// - commands: [`join`](Self::join), [`leave`](Self::leave), [`user_event`](Self::user_event);
/// - accessors: [`members`](Self::members), [`member`](Self::member), [`identity`](Self::identity).
///
/// Every input and command returns the actions to carry out: datagrams to send, timers to set (absolute
/// `at_ms` on the caller's clock) and events. The driver performs them in order and feeds back what comes in.
pub struct Membership {
    foca: Foca<NodeId, WireCodec, GossipRng, Handler>,
    inbox: Arc<Mutex<Inbox>>,
    config: GossipConfig,
    /// Consul's member list, by node name; includes this node.
    members: BTreeMap<String, Member>,
    /// Members that announced their leave (address → generation), until declared down.
    leave_intents: BTreeMap<SocketAddr, u32>,
    /// Cluster size foca's config was last computed for (timeouts and retransmits scale with it).
    sized_for: usize,
    user_ltime: u64,
    has_left: bool,
    rng: ChaCha8Rng,
}

impl Membership {
    /// A membership for `identity`; `rng_seed` fixes every random choice (OS entropy in production,
    /// derived from the run seed in simulation).
    pub fn new(identity: NodeId, config: GossipConfig, rng_seed: u64) -> Membership {
        config.validate().expect("gossip config is invalid");
        let inbox = Arc::new(Mutex::new(Inbox::default()));
        let handler = Handler { inbox: Arc::clone(&inbox) };
        let foca = Foca::with_custom_broadcast(
            identity.clone(),
            config.to_foca(1),
            GossipRng::seed_from_u64(rng_seed),
            WireCodec,
            handler,
        );
        let mut members = BTreeMap::new();
        members.insert(identity.name().to_string(), Member::from_id(&identity, MemberStatus::Alive));
        Membership {
            foca,
            inbox,
            config,
            members,
            leave_intents: BTreeMap::new(),
            sized_for: 1,
            user_ltime: 0,
            has_left: false,
            rng: ChaCha8Rng::seed_from_u64(rng_seed ^ 0x6a6f_696e),
        }
    }

    pub fn identity(&self) -> &NodeId {
        self.foca.identity()
    }

    pub fn config(&self) -> &GossipConfig {
        &self.config
    }

    /// Consul's member list, ordered by name (this node included).
    pub fn members(&self) -> impl Iterator<Item = &Member> {
        self.members.values()
    }

    pub fn member(&self, name: &str) -> Option<&Member> {
        self.members.get(name)
    }

    /// Members that foca currently considers alive or suspect (this node excluded).
    pub fn active_len(&self) -> usize {
        self.foca.num_members()
    }

    /// A datagram from `from`. Garbage, truncated, oversized, foreign-version and replayed packets are
    /// dropped (with a debug log); they never panic and never change state beyond what a valid prefix did.
    pub fn handle_packet(&mut self, from: SocketAddr, bytes: &[u8], now_ms: u64) -> Vec<GossipAction> {
        if self.has_left {
            tracing::debug!(%from, "gossip packet dropped: this node has left");
            return Vec::new();
        }
        if bytes.len() > self.config.packet_bytes_max {
            tracing::debug!(%from, len = bytes.len(), "gossip packet dropped: oversized");
            return Vec::new();
        }
        let mut out = Collected::default();
        if let Err(error) = self.foca.handle_data(bytes, &mut out) {
            tracing::debug!(%from, len = bytes.len(), %error, "gossip packet dropped");
        }
        self.finish(out, now_ms)
    }

    /// A timer that fell due.
    pub fn handle_timer(&mut self, timer: GossipTimer, now_ms: u64) -> Vec<GossipAction> {
        if self.has_left {
            return Vec::new();
        }
        let mut out = Collected::default();
        if let Err(error) = self.foca.handle_timer(timer.0, &mut out) {
            // NotConnected: a probe timer while alone; harmless.
            tracing::debug!(%error, "gossip timer");
        }
        self.finish(out, now_ms)
    }

    /// Asks the node at `addr` to let us in (foca's announce; the answer is a feed of its members).
    pub fn join(&mut self, addr: SocketAddr, now_ms: u64) -> Result<Vec<GossipAction>, GossipError> {
        if self.has_left {
            return Err(GossipError::Left);
        }
        let mut out = Collected::default();
        self.foca.announce(NodeId::placeholder(addr), &mut out).map_err(|e| GossipError::Foca(e.to_string()))?;
        Ok(self.finish(out, now_ms))
    }

    /// Learns members without sending anything (the simulator seeds large clusters this way).
    pub fn add_known_members(&mut self, ids: impl Iterator<Item = NodeId>, now_ms: u64) -> Vec<GossipAction> {
        let mut out = Collected::default();
        let updates = ids.map(foca::Member::alive);
        if let Err(error) = self.foca.apply_many(updates, false, &mut out) {
            tracing::debug!(%error, "add_known_members");
        }
        self.finish(out, now_ms)
    }

    /// Leaves the cluster on purpose: broadcasts a leave intent and our own "down", so members record us as
    /// `left` rather than `failed`. Afterwards every input is ignored.
    pub fn leave(&mut self, now_ms: u64) -> Result<Vec<GossipAction>, GossipError> {
        if self.has_left {
            return Err(GossipError::Left);
        }
        let me = self.identity().clone();
        let intent = BroadcastItem::LeaveIntent { addr: me.addr(), generation: me.generation() };
        self.foca.add_broadcast(&intent.encode()).map_err(|e| GossipError::Foca(e.to_string()))?;
        let mut out = Collected::default();
        self.foca.leave_cluster(&mut out).map_err(|e| GossipError::Foca(e.to_string()))?;
        let actions = self.finish(out, now_ms);
        self.has_left = true;
        if let Some(member) = self.members.get_mut(me.name()) {
            member.status = MemberStatus::Left;
        }
        Ok(actions)
    }

    /// Sends a user event to every member (serf's `consul event`); it is delivered here too. Its `origin`
    /// and `ltime` are set here; the rest (ID, name, payload, filters) is the caller's.
    pub fn user_event(&mut self, mut event: UserEvent, now_ms: u64) -> Result<Vec<GossipAction>, GossipError> {
        if self.has_left {
            return Err(GossipError::Left);
        }
        event.origin = self.identity().name().to_string();
        if event.size_bytes() > USER_EVENT_BYTES_MAX {
            return Err(GossipError::UserEventTooLarge);
        }
        self.user_ltime += 1;
        // Unique across restarts too: a new life restarts the counter under a higher generation.
        event.ltime = (u64::from(self.identity().generation()) << 32) | self.user_ltime;
        let item = BroadcastItem::UserEvent(event);
        self.foca.add_broadcast(&item.encode()).map_err(|e| GossipError::Foca(e.to_string()))?;
        Ok(self.finish(Collected::default(), now_ms))
    }

    /// Turns what foca produced into actions, updating the member list on the way.
    fn finish(&mut self, out: Collected, now_ms: u64) -> Vec<GossipAction> {
        let mut actions = Vec::with_capacity(out.sends.len() + out.timers.len());
        for (to, bytes) in out.sends {
            if self.is_turn_undead_to_active_member(&bytes) {
                continue;
            }
            actions.push(GossipAction::Send { to, bytes });
        }
        for (after, timer) in out.timers {
            let after_ms = u64::try_from(after.as_millis()).unwrap_or(u64::MAX);
            actions.push(GossipAction::SetTimer { at_ms: now_ms.saturating_add(after_ms), timer: GossipTimer(timer) });
        }
        // Broadcasts first: a leave intent and the "down" it explains often share one packet, and foca
        // applies the down before it reads the intent.
        let items: Vec<BroadcastItem> = self.inbox.lock().expect("inbox lock").items.drain(..).collect();
        for item in items {
            self.on_broadcast(item, &mut actions);
        }
        for notification in out.notifications {
            self.on_notification(notification, &mut actions);
        }
        self.resize_if_needed();
        actions
    }

    fn on_broadcast(&mut self, item: BroadcastItem, actions: &mut Vec<GossipAction>) {
        match item {
            BroadcastItem::UserEvent(event) => {
                actions.push(GossipAction::Event(MemberEvent::User(event)));
            }
            BroadcastItem::LeaveIntent { addr, generation } => {
                if self.leave_intents.len() >= LEAVE_INTENTS_MAX && !self.leave_intents.contains_key(&addr) {
                    let oldest = *self.leave_intents.keys().next().expect("non-empty");
                    self.leave_intents.remove(&oldest);
                }
                self.leave_intents.insert(addr, generation);
                let member = self.members.values_mut().find(|m| m.addr == addr && m.generation == generation);
                if let Some(member) = member {
                    if member.status == MemberStatus::Alive {
                        member.status = MemberStatus::Leaving;
                        actions.push(GossipAction::Event(MemberEvent::MemberLeaving(member.clone())));
                    } else if member.status == MemberStatus::Failed {
                        // Its "down" arrived first: it was a leave after all.
                        member.status = MemberStatus::Left;
                        actions.push(GossipAction::Event(MemberEvent::MemberLeave(member.clone())));
                    }
                }
            }
        }
    }

    fn on_notification(&mut self, notification: OwnedNotification<NodeId>, actions: &mut Vec<GossipAction>) {
        match notification {
            OwnedNotification::MemberUp(id) => self.on_member_up(&id, actions),
            OwnedNotification::MemberDown(id) => self.on_member_down(&id, actions),
            OwnedNotification::Rename(_, id) => self.on_member_up(&id, actions),
            OwnedNotification::Rejoin(id) => {
                let me = Member::from_id(&id, MemberStatus::Alive);
                self.members.insert(me.name.clone(), me);
                actions.push(GossipAction::Event(MemberEvent::SelfRejoined { generation: id.generation() }));
                self.announce_to_alive(actions);
            }
            OwnedNotification::Active | OwnedNotification::Idle | OwnedNotification::Defunct => {}
        }
    }

    fn on_member_up(&mut self, id: &NodeId, actions: &mut Vec<GossipAction>) {
        if id.name() == self.identity().name() {
            return; // An old life of ours (or a name clash): our own entry stays ours.
        }
        if let Some(current) = self.members.get(id.name()) {
            if current.addr != id.addr() && matches!(current.status, MemberStatus::Alive | MemberStatus::Leaving) {
                // Two live addresses claim one name: the first keeps it until it fails or leaves (serf logs
                // a name conflict; it does not let the newcomer flap the entry).
                tracing::debug!(name = id.name(), holder = %current.addr, claimant = %id.addr(), "gossip name conflict");
                return;
            }
            if current.addr == id.addr() && current.generation > id.generation() {
                return; // An older life.
            }
            if current.is_life_of(id) && current.status == MemberStatus::Alive {
                return;
            }
        }
        let member = Member::from_id(id, MemberStatus::Alive);
        self.members.insert(member.name.clone(), member.clone());
        actions.push(GossipAction::Event(MemberEvent::MemberJoin(member)));
    }

    fn on_member_down(&mut self, id: &NodeId, actions: &mut Vec<GossipAction>) {
        let left = self.leave_intents.get(&id.addr()) == Some(&id.generation());
        let Some(member) = self.members.get_mut(id.name()) else { return };
        if !member.is_life_of(id) || matches!(member.status, MemberStatus::Left | MemberStatus::Failed) {
            return; // A down about an older life, or already recorded.
        }
        if left {
            self.leave_intents.remove(&id.addr());
            member.status = MemberStatus::Left;
            actions.push(GossipAction::Event(MemberEvent::MemberLeave(member.clone())));
        } else {
            member.status = MemberStatus::Failed;
            actions.push(GossipAction::Event(MemberEvent::MemberFailed(member.clone())));
        }
    }

    /// After a forced rejoin foca starts from an empty member list: announce to a few members we knew alive,
    /// and to a few we believed failed. After a partition heals, the member that told us we were down is on
    /// the other side, which we hold failed; announcing only to our own side would leave the other side to
    /// learn our new life at the next announce to down members, up to `gossip_to_the_dead_interval` later
    /// (the `gossip-partition-heal` simulation measured up to 39 s to converge instead of ~30 s).
    fn announce_to_alive(&mut self, actions: &mut Vec<GossipAction>) {
        let me = self.identity().addr();
        let with_status = |status: MemberStatus| -> Vec<SocketAddr> {
            self.members.values().filter(|m| m.status == status && m.addr != me).map(|m| m.addr).collect()
        };
        let (alive, failed) = (with_status(MemberStatus::Alive), with_status(MemberStatus::Failed));
        let mut out = Collected::default();
        for candidates in [alive, failed] {
            for _ in 0..REJOIN_ANNOUNCES.min(candidates.len()) {
                let addr = candidates[self.rng.gen_range(0..candidates.len())];
                if let Err(error) = self.foca.announce(NodeId::placeholder(addr), &mut out) {
                    tracing::debug!(%error, "rejoin announce");
                }
            }
        }
        for (to, bytes) in out.sends {
            actions.push(GossipAction::Send { to, bytes });
        }
        assert!(out.timers.is_empty() && out.notifications.is_empty(), "an announce only sends");
    }

    /// Works around foca 2.0.0: when a `ChangeSuspectToDown` timer fires for a member that has since refuted
    /// the suspicion (its incarnation moved on, so foca rightly keeps it alive), foca still sends it
    /// `TurnUndead`, and the live member then thinks the cluster has it down and rejoins under a new
    /// generation. A `TurnUndead` to a member foca holds active is such a stray and is not sent.
    fn is_turn_undead_to_active_member(&self, bytes: &[u8]) -> bool {
        // TurnUndead carries no updates or broadcasts: only short packets need a look.
        if bytes.len() > TURN_UNDEAD_BYTES_MAX {
            return false;
        }
        let Ok(header) = foca::Codec::<NodeId>::decode_header(&mut WireCodec, bytes) else { return false };
        if header.message != foca::Message::TurnUndead {
            return false;
        }
        let stray = self.foca.iter_members().any(|member| member.id() == &header.dst);
        if stray {
            tracing::debug!(to = ?header.dst, "gossip: not sending TurnUndead to a member that refuted its suspicion");
        }
        stray
    }

    /// Recomputes foca's size-dependent settings (suspicion timeout, retransmits) when the cluster's size
    /// changes them.
    fn resize_if_needed(&mut self) {
        let size = self.foca.num_members() + 1;
        if self.config.transmissions(size) == self.config.transmissions(self.sized_for)
            && self.config.suspicion_timeout(size) == self.config.suspicion_timeout(self.sized_for)
        {
            return;
        }
        self.sized_for = size;
        self.foca.set_config(self.config.to_foca(size)).expect("only size-dependent fields change");
    }
}
