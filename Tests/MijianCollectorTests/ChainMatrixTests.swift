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
