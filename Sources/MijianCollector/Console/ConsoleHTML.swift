import Foundation
import MijianCore

/// Escaping for the console's pages. Everything a workstation sends (host names, asset numbers,
/// people, USB strings, DNS names, paths) is attacker-chosen: it reaches a page only through
/// `text` (element content), `attr` (a quoted attribute value) or `url` (one URL component).
public enum HTMLText {
    /// Escapes text for element content: `& < > " '`, and C0/C1 controls and bidirectional
    /// overrides (which can make a name read as another) shown as their code.
    public static func text(_ value: String) -> String {
        // Hidden characters first (their replacement is plain ASCII), then the five that HTML reads.
        var visible = ""
        visible.reserveCapacity(value.utf8.count)
        for scalar in value.unicodeScalars {
            if scalar != "\t", scalar != "\n", isHidden(scalar) {
                visible += "\\u{\(String(scalar.value, radix: 16))}"
            } else {
                visible.unicodeScalars.append(scalar)
            }
        }
        return AssessmentRenderer.escape(visible)
    }

    /// Escapes text for a double-quoted attribute value: everything `text` escapes, and
    /// newlines and tabs as character references.
    public static func attr(_ value: String) -> String {
        text(value).replacingOccurrences(of: "\n", with: "&#10;").replacingOccurrences(of: "\t", with: "&#9;")
    }

    /// Percent-encodes one URL component (a path segment or a query value): every byte but
    /// the unreserved characters of RFC 3986, so `/ ? # & = : ;` cannot change the URL's shape
    /// and `javascript:` stays an inert path.
    public static func url(_ value: String) -> String {
        var out = ""
        for byte in value.utf8 {
            switch byte {
            case 0x30...0x39, 0x41...0x5A, 0x61...0x7A, 0x2D, 0x2E, 0x5F, 0x7E: out.unicodeScalars.append(Unicode.Scalar(byte))
            default: out += String(format: "%%%02X", byte)
            }
        }
        return out
    }

    /// A query string of escaped pairs (pairs with an empty value are left out).
    public static func query(_ pairs: [(String, String?)]) -> String {
        let parts = pairs.compactMap { pair -> String? in
            guard let value = pair.1, !value.isEmpty else { return nil }
            return "\(url(pair.0))=\(url(value))"
        }
        return parts.isEmpty ? "" : "?" + parts.joined(separator: "&")
    }

    static func isHidden(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x00...0x1F, 0x7F...0x9F: return true
        case 0x200E, 0x200F, 0x202A...0x202E, 0x2066...0x2069: return true
        default: return false
        }
    }
}

/// The page language: Chinese by default, English on request (`?lang=en` or the `mj_lang` cookie).
struct ConsoleLanguage: Sendable {
    let english: Bool

    /// The phrase in the page's language.
    func t(_ chinese: String, _ english: String) -> String { self.english ? english : chinese }

    var code: String { english ? "en" : "zh-CN" }
    var assessment: AssessmentLanguage { english ? .en : .zh }
}

/// Builds console pages: one layout, one style sheet served by the collector, no scripts.
struct ConsolePage {
    let lang: ConsoleLanguage
    let session: ConsoleSession?
    /// The path of this page, for the language switch.
    let path: String

    func t(_ chinese: String, _ english: String) -> String { lang.t(chinese, english) }

    /// A whole page around `body`.
    func render(title: String, active: String, body: String) -> String {
        let e = HTMLText.text
        var out = """
            <!DOCTYPE html>
            <html lang="\(lang.code)"><head><meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>\(e(title)) · \(e(t("密检 保密管理控制台", "Mijian secrecy console")))</title>
            <link rel="stylesheet" href="/console.css">
            </head><body>
            <a class="skip" href="#main">\(e(t("跳到正文", "Skip to content")))</a>
            <header class="top"><span class="brand">\(e(t("密检 · 保密管理控制台", "Mijian · secrecy console")))</span>

            """
        if let session {
            out += "<nav aria-label=\"\(HTMLText.attr(t("主菜单", "Main menu")))\"><ul>"
            let items: [(String, String, String)] = [
                ("overview", "/", t("概览", "Overview")), ("machines", "/machines", t("计算机", "Machines")), ("rules", "/rules", t("规则", "Rules")),
                ("media", "/media", t("介质", "Media")), ("assessment", "/assessment", t("自查自评", "Self-assessment")),
                ("waivers", "/waivers", t("豁免", "Waivers")), ("enrolment", "/enrolment", t("注册", "Enrolment")),
            ]
            for (key, href, label) in items {
                out += "<li><a href=\"\(href)\"\(key == active ? " aria-current=\"page\"" : "")>\(e(label))</a></li>"
            }
            out += "</ul></nav>"
            out += "<div class=\"account\">\(e(session.user.name)) (\(e(session.user.role == .officer ? t("保密员", "officer") : t("只读", "viewer"))))"
            out += "<form method=\"post\" action=\"/logout\" class=\"inline\">\(csrfField)<button type=\"submit\">\(e(t("退出", "Log out")))</button></form></div>"
        }
        let other = lang.english ? "zh" : "en"
        out += "<a class=\"lang\" href=\"/lang\(HTMLText.query([("to", other), ("back", path)]))\" lang=\"\(lang.english ? "zh-CN" : "en")\">\(lang.english ? "中文" : "English")</a>"
        out += "</header>\n<main id=\"main\" tabindex=\"-1\">\n<h1>\(e(title))</h1>\n\(body)\n</main>\n</body></html>\n"
        return out
    }

    /// The hidden CSRF field of every form.
    var csrfField: String {
        guard let session else { return "" }
        return "<input type=\"hidden\" name=\"csrf\" value=\"\(HTMLText.attr(session.csrf))\">"
    }

    /// A table with a caption; cells are HTML already (callers escape).
    func table(caption: String?, header: [String], rows: [[String]], cls: String = "") -> String {
        var out = "<table\(cls.isEmpty ? "" : " class=\"\(cls)\"")>"
        if let caption { out += "<caption>\(HTMLText.text(caption))</caption>" }
        out += "<thead><tr>" + header.map { "<th scope=\"col\">\(HTMLText.text($0))</th>" }.joined() + "</tr></thead><tbody>\n"
        for row in rows { out += "<tr>" + row.map { "<td>\($0)</td>" }.joined() + "</tr>\n" }
        if rows.isEmpty { out += "<tr><td colspan=\"\(header.count)\">\(HTMLText.text(t("无", "None")))</td></tr>\n" }
        return out + "</tbody></table>\n"
    }

    /// A status word as a badge: the colour is never the only sign, the word is always written.
    func badge(_ state: String) -> String {
        "<span class=\"badge s-\(HTMLText.attr(state))\">\(HTMLText.text(stateName(state)))</span>"
    }

    func stateName(_ state: String) -> String {
        switch state {
        case "compliant", "pass": return t("符合", "compliant")
        case "failing", "fail": return t("不符合", "failing")
        case "error": return t("无法检查", "error")
        case "silent": return t("失联", "silent")
        case "never": return t("从未上报", "never reported")
        case "revoked": return t("密钥已吊销", "key revoked")
        case "waived": return t("已豁免", "waived")
        case "expired": return t("已过期", "expired")
        case "withdrawn": return t("已撤销", "withdrawn")
        case "notapplicable": return t("不适用", "not applicable")
        case "notchecked": return t("未检查", "not checked")
        case "informational": return t("提示", "informational")
        default: return state
        }
    }

    /// Who decided an item: the machines' evidence, people's answers, or nobody yet.
    func decidedBy(_ word: String) -> String {
        switch word {
        case "machine": return t("机器证据", "machine evidence")
        case "people": return t("人工判定", "people")
        default: return t("尚未判定", "not yet decided")
        }
    }

    func time(_ date: Date?) -> String { HTMLText.text(plainTime(date)) }
    /// The same, not yet escaped, for a sentence that is escaped whole.
    func plainTime(_ date: Date?) -> String { date.map { RFC3339.string(from: $0) } ?? "—" }
}

/// The console's style sheet, served as `/console.css` (the CSP allows no inline style).
enum ConsoleStyle {
    static let css = """
        :root{--fg:#1b1b1b;--bg:#fff;--muted:#4a4a4a;--line:#c8c8c8;--accent:#0b4f8a}
        *{box-sizing:border-box}
        body{margin:0;font-family:"Noto Sans CJK SC","Source Han Sans SC","Microsoft YaHei",sans-serif;color:var(--fg);background:var(--bg);line-height:1.5}
        .skip{position:absolute;left:-999px;top:0;background:#ffd;padding:.5em}
        .skip:focus{left:.5em;z-index:10}
        header.top{display:flex;flex-wrap:wrap;align-items:center;gap:1em;padding:.5em 1em;background:#0b2f55;color:#fff}
        header.top a{color:#fff}
        .brand{font-weight:bold}
        nav ul{list-style:none;margin:0;padding:0;display:flex;flex-wrap:wrap;gap:.2em}
        nav a{display:inline-block;padding:.3em .6em;text-decoration:none;border-radius:3px}
        nav a[aria-current=page]{background:#fff;color:#0b2f55}
        .account{margin-left:auto}
        .inline{display:inline}
        main{padding:1em 1.5em;max-width:90em}
        main:focus{outline:none}
        a{color:var(--accent)}
        a:focus,button:focus,input:focus,select:focus,textarea:focus,summary:focus{outline:3px solid #e8a200;outline-offset:2px}
        h1{font-size:1.5em;margin:.3em 0 .6em}
        h2{font-size:1.2em;margin-top:1.5em;border-bottom:1px solid var(--line)}
        table{border-collapse:collapse;width:100%;margin:.5em 0 1em;font-size:.92em}
        caption{text-align:left;font-weight:bold;padding:.3em 0}
        th,td{border:1px solid var(--line);padding:.3em .5em;text-align:left;vertical-align:top;overflow-wrap:anywhere}
        th{background:#eef2f6}
        .cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(11em,1fr));gap:.8em;list-style:none;padding:0}
        .card{display:block;border:1px solid var(--line);border-left-width:.5em;padding:.7em;text-decoration:none;color:var(--fg);border-radius:4px}
        .card .n{display:block;font-size:2em;font-weight:bold}
        .badge{display:inline-block;padding:0 .4em;border-radius:3px;font-weight:bold;border:1px solid currentColor;white-space:nowrap}
        select{max-width:22em}
        .s-compliant,.s-pass,.s-meets{color:#1b5e20}
        .s-failing,.s-fail,.s-fails{color:#a4161a}
        .s-error,.s-pending{color:#7a4100}
        .s-silent,.s-never,.s-expired,.s-withdrawn,.s-notapplicable,.s-notchecked,.s-informational{color:#4a4a4a}
        .s-revoked{color:#6a1b9a}
        .s-waived{color:#1a3e9a}
        .card.s-compliant{border-left-color:#1b5e20}.card.s-failing{border-left-color:#a4161a}.card.s-error{border-left-color:#7a4100}
        .card.s-silent,.card.s-never{border-left-color:#4a4a4a}.card.s-revoked{border-left-color:#6a1b9a}
        form.filters{display:flex;flex-wrap:wrap;gap:.6em;align-items:flex-end;margin-bottom:1em}
        form.filters label,form.stack label{display:flex;flex-direction:column;font-size:.9em}
        form.stack{display:grid;gap:.6em;max-width:40em}
        input,select,textarea,button{font:inherit;padding:.25em .4em}
        button{background:#0b4f8a;color:#fff;border:1px solid #0b4f8a;border-radius:3px;cursor:pointer}
        button.danger{background:#a4161a;border-color:#a4161a}
        .account button{background:transparent;border-color:#fff}
        dl{display:grid;grid-template-columns:max-content 1fr;gap:.15em 1.2em}
        dd{margin:0;overflow-wrap:anywhere}
        dt{font-weight:bold}
        pre{background:#f5f5f5;padding:.5em;overflow:auto;white-space:pre-wrap;overflow-wrap:anywhere;font-size:.85em}
        details{margin:.3em 0}
        summary{cursor:pointer}
        .muted{color:var(--muted)}
        .notice{border:1px solid #7a4100;background:#fff8e6;padding:.5em 1em}
        .error-box{border:1px solid #a4161a;background:#fdecea;padding:.5em 1em}
        .pager{display:flex;gap:1em;align-items:center}
        .lang{margin-left:.5em}
        @media print{
          header.top,nav,.skip,form,.pager,.no-print{display:none !important}
          body{font-family:"Noto Serif CJK SC","Source Han Serif SC",serif;color:#000}
          main{padding:0;max-width:none}
          a{color:#000;text-decoration:none}
          table{page-break-inside:auto;font-size:.75em}tr{page-break-inside:avoid}h2{page-break-after:avoid}
          details{display:block}details>*{display:block}
        }
        """
}
