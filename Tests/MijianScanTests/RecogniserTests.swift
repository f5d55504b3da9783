import MijianCore
import Testing

@testable import MijianScan

/// The marking grammar and where a hit sits: what is a marking, what only a mention, what nothing.
@Suite struct RecogniserTests {
    /// Lines of a document body, numbered from 1.
    static func body(_ texts: [String], part: String = "test", region: TextRegion = .body) -> [TextLine] {
        texts.enumerated().map { TextLine($1, HitLocation(part: part, line: $0 + 1, region: region)) }
    }

    static func first(_ texts: [String], region: TextRegion = .body) -> MarkingHit? {
        MarkingRecogniser.hits(in: body(texts, region: region)).first
    }

    /// Marking text alone on the second line of the first page, every form of the grammar.
    @Test(arguments: [
        ("秘密★1年", "秘密★1年", Classification.confidential, "1年"),
        ("机密★2027年6月30日", "机密★2027年6月30日", .secret, "2027年6月30日"),
        ("绝密★长期", "绝密★长期", .topSecret, "长期"),
        ("机密★6个月", "机密★6个月", .secret, "6个月"),
        ("秘密★解密条件：项目验收后", "秘密★解密条件", .confidential, "解密条件"),
        ("秘密☆1年", "秘密☆1年", .confidential, "1年"),
        ("秘密＊１年", "秘密＊１年", .confidential, "１年"),
        ("秘密*10年", "秘密*10年", .confidential, "10年"),
        ("秘 密 ★ 1 年", "秘密★1年", .confidential, "1年"),
        ("机密★2027 年 6 月 30 日", "机密★2027年6月30日", .secret, "2027年6月30日"),
        ("秘密　★　１年", "秘密★１年", .confidential, "１年"),
        ("机密★十年", "机密★十年", .secret, "十年"),
        ("密级：秘密★1年", "秘密★1年", .confidential, "1年"),
        ("秘密★1年        特急", "秘密★1年", .confidential, "1年"),
        ("000126\t秘密★1年", "秘密★1年", .confidential, "1年"),
    ] as [(String, String, Classification, String?)])
    func markingAtTheTop(line: String, text: String, level: Classification, period: String?) throws {
        let hit = try #require(Self.first(["000123", line, "关于某项工作的通知"]))
        #expect(hit.text == text)
        #expect(hit.period == period)
        #expect(hit.kind == .marking)
        #expect(hit.level == level)
        #expect(hit.score >= MarkingRecogniser.markingScore)
        #expect(hit.location.line == 2)
    }

    @Test func converterLineBreaksBetweenTheParts() throws {
        let split = try #require(Self.first(["秘密", "★1年", "通知"]))
        #expect(split.kind == .marking)
        #expect(split.text == "秘密★1年")
        let afterStar = try #require(Self.first(["机密★", "2027年6月30日", "通知"]))
        #expect(afterStar.kind == .marking)
        #expect(afterStar.period == "2027年6月30日")
    }

    @Test func starWithoutPeriodIsAMarkingAtTheTopWithTheDefaultPeriod() throws {
        let hit = try #require(Self.first(["秘密★", "通知正文"]))
        #expect(hit.kind == .marking)
        #expect(hit.period == nil)
        #expect(hit.score < 95)
    }

    @Test func aHeaderPartHoldsMarkings() throws {
        let hit = try #require(Self.first(["秘密★1年"], region: .header))
        #expect(hit.kind == .marking)
        #expect(hit.reason.contains("header"))
    }

    @Test func theSameStringMidParagraphIsAMention() throws {
        let hit = try #require(Self.first(["培训材料", "文件首页左上角应标注秘密★1年等密级标志，以下为示例说明。"]))
        #expect(hit.kind == .mention)
        #expect(hit.score < MarkingRecogniser.markingScore)
        #expect(hit.reason.contains("running text"))
    }

    @Test func aNumberBeforeTheMarkingIsACopyNumberOnlyWhenSpaceSetsThemApart() throws {
        let running = try #require(Self.first(["通知", "共印制000126份秘密★1年的文件"]))
        #expect(running.kind == .mention)
        let copy = try #require(Self.first(["000126    秘密★1年", "通知"]))
        #expect(copy.kind == .marking)
    }

    @Test func aMarkingLineBelowTheTopIsAMention() throws {
        let lines = ["标题", "第一段", "第二段", "第三段", "第四段", "秘密★1年"]
        let hit = try #require(Self.first(lines))
        #expect(hit.kind == .mention)
        #expect(hit.location.line == 6)
    }

    @Test func aFooterIsAMentionAtMost() throws {
        let hit = try #require(Self.first(["秘密★1年"], region: .footer))
        #expect(hit.kind == .mention)
    }

    /// Confusers: none of these is a marking; most are not even a hit.
    @Test(arguments: [
        "本合同涉及商业秘密，双方应保守秘密。",
        "商业秘密",
        "保守秘密",
        "秘密",
        "机密文件管理办法",
        "酒店很好★★★★☆ 推荐",
        "秘密★★★★★",
        "绝密 特急",
        "第1页 共3页",
    ])
    func confuserIsNoMarking(line: String) {
        let hits = MarkingRecogniser.hits(in: Self.body([line, "正文"]))
        #expect(hits.allSatisfy { $0.kind == .mention })
        #expect(hits.isEmpty)
    }

    @Test func aQualifiedLevelWithAStarIsNoStateSecret() throws {
        let hit = try #require(Self.first(["商业秘密★1年"]))
        #expect(hit.kind == .mention)
    }

    @Test func markingsComeFirst() throws {
        let hits = MarkingRecogniser.hits(in: Self.body(["秘密★1年", "本文讨论绝密★长期文件的管理"]))
        #expect(hits.map(\.kind) == [.marking, .mention])
        #expect(hits.map(\.level) == [.confidential, .topSecret])
    }
}

/// A list of markings (a ledger's column, a handout's examples) is not a document's marking.
@Suite struct MarkingListTests {
    @Test func differentMarkingsOneToALineAreAList() {
        let hits = MarkingRecogniser.hits(in: RecogniserTests.body(["密级标志示例", "秘密★1年", "机密★2027年6月30日", "绝密★长期"]))
        #expect(hits.count == 3)
        #expect(hits.allSatisfy { $0.kind == .mention })
        #expect(hits.first?.reason.contains("a list") == true)
    }

    @Test func theSameMarkingRepeatedIsStillTheDocumentsMarking() throws {
        let hits = MarkingRecogniser.hits(in: RecogniserTests.body(["000123", "秘密★1年", "通知", "附件", "秘密★1年"]))
        #expect(hits.first?.kind == .marking)
        #expect(hits.first?.location.line == 2)
    }
}
