/**
 * replSetGetStatus's reply for the one-node set, in mongod 7.0's shape
 * (src/mongo/db/repl/topology_coordinator.cpp, prepareStatusResponse;
 * replication_coordinator_impl.cpp, processReplSetGetStatus): the set's optimes, the
 * election that made it primary, and one member, itself, PRIMARY.
 */
import { Int32, Long, Timestamp } from 'bson';
import type { Document } from '../bson.js';
import type { ReplicaSet } from './replica_set.js';
import { opTimeDocument, TERM } from './replica_set.js';
import type { OpTime } from './oplog.js';

/** MemberState::RS_PRIMARY. */
const PRIMARY = 1;

/** An optime's wall clock: the dev server reports its timestamp's second. */
function wallTime(opTime: OpTime): Date {
  return new Date(opTime.ts.high * 1000);
}

export function replSetStatus(set: ReplicaSet, lastApplied: OpTime, startedAt: Date): Document {
  const now = new Date();
  const applied = opTimeDocument(lastApplied);
  const wall = wallTime(lastApplied);
  const electionDate = set.electionDate ?? startedAt;
  const electionTime = set.electionTime ?? lastApplied.ts;
  return {
    set: set.name,
    date: now,
    myState: PRIMARY,
    term: Long.fromNumber(TERM),
    syncSourceHost: '',
    syncSourceId: -1,
    heartbeatIntervalMillis: Long.fromNumber(2000),
    majorityVoteCount: 1,
    writeMajorityCount: 1,
    votingMembersCount: 1,
    writableVotingMembersCount: 1,
    optimes: {
      // One voting member: what it has applied is majority-committed, and durable once
      // written (every oplog write here is journaled with its transaction).
      lastCommittedOpTime: applied,
      lastCommittedWallTime: wall,
      readConcernMajorityOpTime: applied,
      appliedOpTime: applied,
      durableOpTime: applied,
      lastAppliedWallTime: wall,
      lastDurableWallTime: wall,
    },
    lastStableRecoveryTimestamp: lastApplied.ts,
    electionCandidateMetrics: {
      lastElectionReason: 'electionTimeout',
      lastElectionDate: electionDate,
      electionTerm: Long.fromNumber(TERM),
      lastCommittedOpTimeAtElection: { ts: Timestamp.fromNumber(0), t: Long.fromNumber(-1) },
      lastSeenOpTimeAtElection: { ts: electionTime, t: Long.fromNumber(-1) },
      numVotesNeeded: 1,
      priorityAtElection: 1,
      electionTimeoutMillis: Long.fromNumber(10000),
      newTermStartDate: electionDate,
      wMajorityWriteAvailabilityDate: electionDate,
    },
    members: [
      {
        _id: set.memberId,
        name: set.me,
        health: 1,
        state: PRIMARY,
        stateStr: 'PRIMARY',
        uptime: new Int32(Math.floor((now.getTime() - startedAt.getTime()) / 1000)),
        optime: applied,
        optimeDate: wall,
        lastAppliedWallTime: wall,
        lastDurableWallTime: wall,
        syncSourceHost: '',
        syncSourceId: -1,
        infoMessage: '',
        electionTime,
        electionDate,
        configVersion: Number(set.config?.['version'] ?? 1),
        configTerm: TERM,
        self: true,
        lastHeartbeatMessage: '',
      },
    ],
    ok: 1,
  };
}
