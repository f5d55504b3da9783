import Foundation
import MijianCollector
import Testing

@Suite("Chain matrix")
struct ChainMatrixTests {
    let head = ChainState(epoch: 1, seq: 5, digest: "d5")

    @Test func firstReportAtZeroIsFirst() {
        let decision = ChainMatrix.decide(state: nil, epoch: 0, seq: 0, prev: "", digest: "a")
        #expect(decision.outcome == .first)
        #expect(decision.missing == nil)
    }

    @Test func firstReportPastZeroRecordsWhatIsMissing() {
        let decision = ChainMatrix.decide(state: nil, epoch: 0, seq: 3, prev: "x", digest: "a")
        #expect(decision.outcome == .gap)
        #expect(decision.missing == 0...2)
    }

    @Test func nextWithMatchingPrevIsAccepted() {
        #expect(ChainMatrix.decide(state: head, epoch: 1, seq: 6, prev: "d5", digest: "d6").outcome == .accepted)
    }

    @Test func nextWithOtherPrevIsAFork() {
        let decision = ChainMatrix.decide(state: head, epoch: 1, seq: 6, prev: "zz", digest: "d6")
        #expect(decision.outcome == .fork)
        #expect(!decision.outcome.advances)
        #expect(decision.outcome.isStored)
    }

    @Test func sameSeqSameDigestIsADuplicate() {
        let decision = ChainMatrix.decide(state: head, epoch: 1, seq: 5, prev: "d4", digest: "d5")
        #expect(decision.outcome == .duplicate)
        #expect(!decision.outcome.isStored)
    }

    @Test func sameSeqOtherDigestIsAFork() {
        #expect(ChainMatrix.decide(state: head, epoch: 1, seq: 5, prev: "d4", digest: "other").outcome == .fork)
    }

    @Test func lowerSeqIsAReplay() {
        let decision = ChainMatrix.decide(state: head, epoch: 1, seq: 2, prev: "d1", digest: "d2")
        #expect(decision.outcome == .replay)
        #expect(decision.outcome.isConflict)
        #expect(!decision.outcome.isStored)
    }

    @Test func olderEpochIsAReplay() {
        #expect(ChainMatrix.decide(state: head, epoch: 0, seq: 9, prev: "", digest: "q").outcome == .replay)
    }

    @Test func gapIsAcceptedWithTheMissingSeqs() {
        let decision = ChainMatrix.decide(state: head, epoch: 1, seq: 9, prev: "d8", digest: "d9")
        #expect(decision.outcome == .gap)
        #expect(decision.missing == 6...8)
        #expect(decision.outcome.advances)
    }

    @Test func newEpochIsAcceptedAndNoted() {
        let decision = ChainMatrix.decide(state: head, epoch: 2, seq: 0, prev: "", digest: "n0")
        #expect(decision.outcome == .newEpoch)
        #expect(decision.missing == nil)
        #expect(ChainMatrix.decide(state: head, epoch: 2, seq: 2, prev: "n1", digest: "n2").missing == 0...1)
    }
}

@Suite("Chain limits: how far a report may move its chain")
struct ChainLimitTests {
    let head = ChainState(epoch: 1_700_000_000, seq: 5, digest: "d5")
    let now = Date(timeIntervalSince1970: 1_767_225_600)

    func reason(_ state: ChainState?, epoch: Int64, seq: Int64, limits: ChainLimits = ChainLimits()) -> String? {
        ChainMatrix.refusal(state: state, epoch: epoch, seq: seq, receivedAt: now, limits: limits)?.reason
    }

    @Test func theNextSeqAndAJumpAtTheBoundPass() {
        #expect(reason(head, epoch: head.epoch, seq: 6) == nil)
        #expect(reason(head, epoch: head.epoch, seq: 5 + 1 + ChainLimits().maxSeqJump) == nil)
        #expect(reason(nil, epoch: 0, seq: ChainLimits().maxSeqJump) == nil)
    }

    @Test func aJumpPastTheBoundIsRefused() {
        #expect(reason(head, epoch: head.epoch, seq: 5 + 1 + ChainLimits().maxSeqJump + 1) == "seq-jump")
        #expect(reason(head, epoch: head.epoch, seq: Int64.max) == "seq-jump")
        #expect(reason(nil, epoch: 0, seq: Int64.max) == "seq-jump")
        #expect(reason(head, epoch: head.epoch + 1, seq: ChainLimits().maxSeqJump + 1) == "seq-jump")
    }

    @Test func replaysDuplicatesAndForksAreLeftToTheMatrix() {
        #expect(reason(head, epoch: head.epoch, seq: 0) == nil)
        #expect(reason(head, epoch: head.epoch, seq: 5) == nil)
        #expect(reason(head, epoch: head.epoch - 1, seq: Int64.max) == nil)
    }

    @Test func negativeNumbersAreRefused() {
        #expect(reason(head, epoch: head.epoch, seq: -1) == "bad-chain")
        #expect(reason(head, epoch: -1, seq: 0) == "bad-chain")
        #expect(reason(nil, epoch: Int64.min, seq: Int64.min) == "bad-chain")
    }

    @Test func anEpochPastTheYear9999IsRefused() {
        #expect(reason(head, epoch: Int64.max, seq: 0) == "bad-chain")
        #expect(reason(nil, epoch: 253_402_300_800, seq: 0) == "bad-chain")
        #expect(reason(head, epoch: 253_402_300_799, seq: 0) == nil)
    }

    @Test func anEpochAheadOfTheCollectorsClockIsNotRefused() {
        // A machine first started with its clock fast numbers its epoch (and every later one) in
        // the future: refusing it would lock the machine out for ever. It is flagged instead.
        let clock = Int64(now.timeIntervalSince1970)
        #expect(reason(head, epoch: clock + 30 * 86_400, seq: 0) == nil)
        #expect(reason(nil, epoch: clock + 3650 * 86_400, seq: 0) == nil)
        #expect(ClockSkew.judge(issuedAt: now, receivedAt: now, previousIssuedAt: nil, epoch: clock + 30 * 86_400) == "epoch-ahead")
        #expect(ClockSkew.judge(issuedAt: now, receivedAt: now, previousIssuedAt: nil, epoch: clock + ClockSkew.toleranceSeconds) == nil)
        #expect(ClockSkew.judge(issuedAt: now, receivedAt: now, previousIssuedAt: nil, epoch: Int64.max) == "epoch-ahead")
        #expect(ClockSkew.epochSeconds(epoch: clock + 30 * 86_400, receivedAt: now) == 30 * 86_400)
        #expect(ClockSkew.epochSeconds(epoch: Int64.max, receivedAt: Date(timeIntervalSince1970: -1e10)) == Int64.max)
        #expect(ClockSkew.epochSeconds(epoch: 0, receivedAt: .distantFuture) < 0)
    }

    @Test func aCorruptHeadCannotMakeTheCheckTrap() {
        let corrupt = ChainState(epoch: 3, seq: Int64.min, digest: "x")
        #expect(reason(corrupt, epoch: 3, seq: Int64.max) == "seq-jump")
        let top = ChainState(epoch: 3, seq: Int64.max, digest: "x")
        #expect(reason(top, epoch: 3, seq: Int64.max) == nil)
        #expect(ChainMatrix.decide(state: top, epoch: 3, seq: Int64.max, prev: "", digest: "y").outcome == .fork)
    }
}
