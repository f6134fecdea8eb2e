/**
 * What a claim controller may do with its addresses, as explicit state
 * machines with the world as parameters: no timers, no I/O, no clock of their
 * own. agent/claimcontroller.ts feeds them what happened (a heartbeat came
 * back, the link went down, a watchdog tick) and carries out what they say;
 * the unit tests (test/unit/holding.test.ts) run them on a simulated cluster
 * and clock, many minutes of it in milliseconds.
 *
 * The fence: a controller serves its claims only while it knows it is not
 * cut off. Its modes:
 *
 * | mode      | addresses | leaves it when |
 * |-----------|-----------|----------------|
 * | fenced    | none      | a heartbeat sent after the fence began came back within the fence time, and the claims were listed after it began: serving |
 * | serving   | its claims, and what it took over | no heartbeat for the fence time: fenced, or keeping if peers answer; the link goes: link-lost |
 * | keeping   | kept as they are | a heartbeat: serving; the peers silent too: fenced; the link goes: link-lost |
 * | link-lost | none (peers paused, IpNode deleted) | the link is back: fenced, until the above |
 * | stopped   | as the stop left them | never |
 *
 * A controller starts fenced. "Peers answer" is the membership's word: some
 * member heard within the fence time (agent/peers.ts); without a membership
 * the API is the only witness, and a failing heartbeat fences.
 *
 * The takeover: which claims of other holders this node serves, given the
 * membership's view, is `takeovers` below.
 */
import {standbysFor, takesOver} from './claims.js';

/**
 * A standby takes a claim over only if it heard a peer within this long: one
 * cut off from the segment finds every other member dead, and must not take
 * their claims for that (SWIM finds a member dead in about 0.6 s; this is
 * longer than a member goes without a message while the segment works).
 */
export const TAKEOVER_HEARD_MS = 600;
/** How often an address kept down by a conflict is checked again. */
export const CONFLICT_RETRY_MS = 2000;

export type FenceMode = 'fenced' | 'serving' | 'keeping' | 'link-lost' | 'stopped';

export interface FenceState {
  readonly mode: FenceMode;
  /** When the last heartbeat that came back was sent (0: none since the start or since the link came back). */
  readonly lastBeat: number;
  /** When the fence began (the start, a lost heartbeat, a lost link): what ends it must be newer. */
  readonly fencedAt: number;
  /** The last heartbeat failed (said once until one succeeds). */
  readonly beatFailing: boolean;
  /** The link's state while it is lost (operstate). */
  readonly link?: string;
}

export type FenceEvent =
  | {type: 'beat-ok'; sentAt: number}
  | {type: 'beat-failed'}
  /** The watchdog: is it time to fence? */
  | {type: 'tick'}
  /** The claims were listed in full (a watch's list came back). */
  | {type: 'claims-listed'}
  | {type: 'link-down'; state: string}
  | {type: 'link-up'}
  | {type: 'stop'};

/** What the controller knows of the world when an event arrives. */
export interface FenceWorld {
  now: number;
  /** fenceAfterMs(--hb, --monitor). */
  fenceMs: number;
  /** With a membership: whether any peer was heard within fenceMs. Undefined without one. */
  peersHeard?: boolean;
  /** When the claims were last listed in full; undefined while the watch has no list. */
  listedAt?: number;
}

/** What to do, in order. Notes are for the log: the controller words them. */
export type FenceEffect =
  /** Take every address of this owner down, forget the takeovers, and read the claims anew. */
  | {do: 'fence'}
  | {do: 'pause-peers'}
  | {do: 'resume-peers'}
  /** Delete the IpNode, so that the scheduler moves the claims now. */
  | {do: 'delete-ipnode'}
  | {do: 'heartbeat'}
  /** The API answers again: list the claims now rather than after the watch's back-off. */
  | {do: 'list-claims'}
  /** Run a pass: bring up what is assigned. */
  | {do: 'serve'}
  | {do: 'note'; what: 'beat-failing' | 'beat-back' | 'kept-without-api' | 'self-fenced' | 'serving' | 'link-lost' | 'link-back'};

export interface FenceStep {
  state: FenceState;
  effects: FenceEffect[];
}

/** A controller just started: fenced until a heartbeat and a list. */
export function startFence(now: number): FenceState {
  return {mode: 'fenced', lastBeat: 0, fencedAt: now, beatFailing: false};
}

/** Whether the addresses of its claims may be up (serving, or kept through an API outage). */
export function serves(s: FenceState): boolean {
  return s.mode === 'serving' || s.mode === 'keeping';
}

/** Whether the last heartbeat is recent: the API answers this node. */
export function beating(s: FenceState, w: Pick<FenceWorld, 'now' | 'fenceMs'>): boolean {
  return s.lastBeat > 0 && w.now - s.lastBeat < w.fenceMs;
}

export function fenceStep(s: FenceState, e: FenceEvent, w: FenceWorld): FenceStep {
  if (s.mode === 'stopped') return {state: s, effects: []};
  switch (e.type) {
    case 'stop':
      return {state: {...s, mode: 'stopped'}, effects: []};
    case 'beat-ok': {
      // A node whose link is down must look gone: a heartbeat sent before the loss says nothing now.
      if (s.mode === 'link-lost') return {state: s, effects: []};
      // Replies may come back out of order: the newest send counts.
      const next: FenceState = {...s, lastBeat: Math.max(s.lastBeat, e.sentAt), beatFailing: false, mode: s.mode === 'keeping' ? 'serving' : s.mode};
      const effects: FenceEffect[] = s.beatFailing ? [{do: 'note', what: 'beat-back'}] : [];
      return next.mode === 'fenced' ? unfence(next, w, effects) : {state: next, effects};
    }
    case 'beat-failed':
      if (s.mode === 'link-lost' || s.beatFailing) return {state: s, effects: []};
      return {state: {...s, beatFailing: true}, effects: [{do: 'note', what: 'beat-failing'}]};
    case 'claims-listed':
      return s.mode === 'fenced' ? unfence(s, w, []) : {state: s, effects: []};
    case 'tick': {
      if (!serves(s) || w.now - s.lastBeat <= w.fenceMs) return {state: s, effects: []};
      if (w.peersHeard) {
        return s.mode === 'keeping' ? {state: s, effects: []} : {state: {...s, mode: 'keeping'}, effects: [{do: 'note', what: 'kept-without-api'}]};
      }
      return {state: {...s, mode: 'fenced', fencedAt: w.now}, effects: [{do: 'fence'}, {do: 'note', what: 'self-fenced'}]};
    }
    case 'link-down':
      if (s.mode === 'link-lost') return {state: s, effects: []};
      // Silent to its peers too: the claims' standbys take over even when the API is away.
      return {
        state: {...s, mode: 'link-lost', link: e.state, lastBeat: 0, fencedAt: w.now},
        effects: [{do: 'pause-peers'}, {do: 'fence'}, {do: 'delete-ipnode'}, {do: 'note', what: 'link-lost'}],
      };
    case 'link-up':
      if (s.mode !== 'link-lost') return {state: s, effects: []};
      return {state: {...s, mode: 'fenced', link: undefined}, effects: [{do: 'note', what: 'link-back'}, {do: 'resume-peers'}, {do: 'heartbeat'}]};
  }
}

/** Ends a fence once a heartbeat sent after it began came back within the fence time, and the claims were listed after it began. */
function unfence(s: FenceState, w: FenceWorld, effects: FenceEffect[]): FenceStep {
  if (s.lastBeat === 0 || s.lastBeat < s.fencedAt || w.now - s.lastBeat > w.fenceMs) return {state: s, effects};
  if (w.listedAt === undefined || w.listedAt < s.fencedAt) return {state: s, effects: [...effects, {do: 'list-claims'}]};
  return {state: {...s, mode: 'serving'}, effects: [...effects, {do: 'note', what: 'serving'}, {do: 'serve'}]};
}

/** A claim as the takeover sees it. */
export interface ClaimSeen {
  name: string;
  /** Its assigned node (spec.nodeName); empty for none. */
  holder: string;
  cidr?: string;
  /** When this node saw the claim move to its holder (seeMoves); undefined: it has had that holder since first seen. */
  movedAt?: number;
}

/** Each claim's holder as this node last saw it, and when it saw the claim move there. */
export type HolderSeen = ReadonlyMap<string, {holder: string; at?: number}>;

/**
 * Notes which claims moved to another holder, and when this node saw it: a
 * claim first seen has had its holder "forever" (no time). The takeover
 * reads it to tell a holder that died from one the scheduler has just
 * given the claim to after seeing it live.
 */
export function seeMoves(before: HolderSeen, claims: ReadonlyArray<{name: string; holder: string}>, now: number): Map<string, {holder: string; at?: number}> {
  const next = new Map<string, {holder: string; at?: number}>();
  for (const c of claims) {
    const was = before.get(c.name);
    next.set(c.name, !was ? {holder: c.holder} : was.holder === c.holder ? was : {holder: c.holder, at: now});
  }
  return next;
}

/** What the takeover needs of the world. */
export interface TakeoverWorld {
  self: string;
  /** Every member this node knows, itself included. */
  members: readonly string[];
  /** The membership's state of a member (undefined: unknown). */
  state(name: string): string | undefined;
  /** This node hears the group (a peer lately, or the API): one cut off finds everyone dead and must take nothing for it. */
  hearing: boolean;
  /** Whether the claim's address is up here. */
  upHere(cidr: string): boolean;
  /** When the membership last saw a member change state (its death, for a dead one); undefined: unknown. */
  deadSince?(name: string): number | undefined;
}

export interface Takeovers {
  /** Claims taken over, by name: the holder they were taken from. The state to keep for the next call. */
  taken: Map<string, string>;
  /** The claims to serve here as taken over. */
  serve: Set<string>;
  /** Those taken over on this call. */
  began: ClaimSeen[];
}

/**
 * The claims this node serves in place of a holder the group found dead:
 * those of which it is the first standby the group holds live (only while it
 * hears the group itself), and those it took before, until the scheduler
 * assigns them anew. One it took whose address never came up here (another
 * host answered the probe: the holder's controller had died, not its node)
 * is let go when the holder is back.
 *
 * A claim moved to its holder after this node found that holder dead is not
 * taken: the scheduler saw the holder live later than this node did (it came
 * back, and this node has not heard so yet); it is taken if the holder dies
 * again.
 *
 * The standby order is read from the claim's name over the members, not from
 * the claim's copy of STANDBYS: the scheduler writes a prefix of that same
 * order, so two standbys whose copies of a claim differ in age still agree
 * which of them is first.
 */
export function takeovers(before: ReadonlyMap<string, string>, claims: readonly ClaimSeen[], w: TakeoverWorld): Takeovers {
  const taken = new Map(before);
  const serve = new Set<string>();
  const began: ClaimSeen[] = [];
  const names = new Set<string>();
  for (const c of claims) {
    names.add(c.name);
    const from = taken.get(c.name);
    // Assigned anew (here, or elsewhere): the takeover is over.
    if (from !== undefined && from !== c.holder) taken.delete(c.name);
    if (c.holder === w.self || !c.holder) continue;
    if (taken.get(c.name) === c.holder) {
      if (w.state(c.holder) !== 'dead' && !(c.cidr && w.upHere(c.cidr))) {
        taken.delete(c.name);
        continue;
      }
      serve.add(c.name);
      continue;
    }
    if (!w.hearing || !takesOver(w.self, c.holder, standbysFor(c.name, c.holder, w.members, w.members.length), w.state)) continue;
    if (c.movedAt !== undefined && (w.deadSince?.(c.holder) ?? -Infinity) < c.movedAt) continue;
    taken.set(c.name, c.holder);
    began.push(c);
    serve.add(c.name);
  }
  for (const name of [...taken.keys()]) if (!names.has(name)) taken.delete(name);
  return {taken, serve, began};
}

/**
 * Whether this node would take a claim of `suspect` over if the group found
 * it dead: its first standby, with the suspect counted dead. The controller
 * probes those claims' addresses while the suspicion lasts, so that the
 * takeover need not wait for a probe of its own.
 */
export function wouldTakeOver(self: string, suspect: string, claim: string, members: readonly string[], state: (name: string) => string | undefined): boolean {
  return takesOver(self, suspect, standbysFor(claim, suspect, members, members.length), (n) => (n === suspect ? 'dead' : state(n)));
}

/** A claim as this node's duty towards it sees it. */
export interface ClaimDutyView {
  name: string;
  holder: string;
  deleting?: boolean;
  /** TAKEN_BY: the node that says it took the claim over. */
  takenBy?: string;
  /** RELEASE_TO: the scheduler asks the holder to let go (a handoff). */
  releaseTo?: string;
}

/**
 * What this node does with a claim: serve its address, let it go (a handoff
 * the scheduler asked for: down, then confirm), or nothing. A claim still
 * assigned here that another node says it took over (while this one was
 * away) stays with the taker until the scheduler assigns it anew; a handoff
 * asked of a lost holder is not the taker's to make.
 */
export function duty(c: ClaimDutyView, self: string, taken: ReadonlySet<string>): 'serve' | 'release' | 'none' {
  if (c.deleting) return 'none';
  if (taken.has(c.name)) return 'serve';
  if (c.holder !== self) return 'none';
  if (c.takenBy && c.takenBy !== self) return 'none';
  return c.releaseTo ? 'release' : 'serve';
}
