import Foundation
import MijianCore
import MijianTestSupport
import Testing

@testable import MijianChecks

/// The identity rules' judgements on facts made here: pwquality's credits, PAM controls, factors
/// and the policy's `auth` section.
@Suite("auth.* judgements")
struct AuthChecksTests {
    static func stack(_ pwquality: [AuthSetting], line: String = "pam_pwquality", options: [String] = ["retry=3"], control: String = "requisite") -> AuthFacts {
        AuthFacts(
            pam: [PAMService(name: "common-password", lines: [
                PAMLine(type: "password", control: control, module: line, options: options, location: "/etc/pam.d/common-password:25"),
                PAMLine(type: "password", control: "[success=1 default=ignore]", module: "pam_unix", options: ["obscure", "use_authtok", "yescrypt"], location: "/etc/pam.d/common-password:26"),
            ])],
            pwquality: pwquality)
    }

    static func setting(_ key: String, _ value: String) -> AuthSetting {
        AuthSetting(key: key, value: value, file: "/etc/security/pwquality.conf", line: 1)
    }

    @Test("pwquality: minlen defaults to 8, positive credits shorten it, negative credits demand classes")
    func credits() throws {
        #expect(AuthChecks.quality(Self.stack([]))?.minLength == 8)
        // minlen 12 with one credit per class: 8 characters mixing all four classes score 12.
        let credited = try #require(AuthChecks.quality(Self.stack(["dcredit", "ucredit", "lcredit", "ocredit"].map { Self.setting($0, "1") } + [Self.setting("minlen", "12")])))
        #expect(credited.minLength == 8)
        // Big credits never take it below half of minlen: each character earns at most one credit.
        let generous = try #require(AuthChecks.quality(Self.stack([Self.setting("minlen", "10"), Self.setting("dcredit", "9")])))
        #expect(generous.minLength == 6)
        let negative = try #require(AuthChecks.quality(Self.stack(["dcredit", "ucredit", "lcredit", "ocredit"].map { Self.setting($0, "-1") } + [Self.setting("minlen", "12")])))
        #expect(negative.minLength == 12 && negative.classes == 4)
        // minlen below 6 is taken as 6, as libpwquality does.
        #expect(AuthChecks.quality(Self.stack([Self.setting("minlen", "4")]))?.minLength == 6)
    }

    @Test("the pam_pwquality line's options win over pwquality.conf; enforcing=0 and optional enforce nothing")
    func lineOptionsAndEnforcing() throws {
        #expect(AuthChecks.quality(Self.stack([Self.setting("minlen", "14")], options: ["retry=3", "minlen=9"]))?.minLength == 9)
        let warnOnly = try #require(AuthChecks.quality(Self.stack([Self.setting("minlen", "14"), Self.setting("enforcing", "0")])))
        #expect(warnOnly.minLength == 6)
        #expect(warnOnly.derivation.contains { $0.contains("enforcing=0") })
        let optional = try #require(AuthChecks.quality(Self.stack([Self.setting("minlen", "14")], control: "optional")))
        #expect(optional.minLength == 6)
        // pam_unix's own minlen counts even without pwquality.
        var unix = Self.stack([])
        unix.pam[0].lines.removeFirst()
        unix.pam[0].lines[0].options.append("minlen=10")
        #expect(AuthChecks.quality(unix)?.minLength == 10)
    }

    @Test("PAM controls: required, requisite and default=die are mandatory; sufficient and Debian's primary block are not")
    func controls() {
        func line(_ control: String, _ module: String = "pam_pkcs11") -> PAMLine {
            PAMLine(type: "auth", control: control, module: module, options: [], location: "x:1")
        }
        #expect(line("required").isMandatory && line("requisite").isMandatory && line("[default=die]").isMandatory)
        #expect(line("[success=ok new_authtok_reqd=ok default=bad]").isMandatory)
        #expect(!line("sufficient").isMandatory && !line("optional").isMandatory && !line("[success=end default=ignore]").isMandatory)
        let sufficient = AuthChecks.factors([PAMService(name: "login", lines: [line("[success=end default=ignore]", "pam_fprintd"), line("[success=1 default=ignore]", "pam_unix")])])
        #expect(sufficient.mandatory.isEmpty && sufficient.alternatives.map(\.0) == [.biometric])
        // A factor counts only when every login stack makes it mandatory.
        let mixed = AuthChecks.factors([
            PAMService(name: "login", lines: [line("required")]), PAMService(name: "gdm-password", lines: [line("sufficient")]),
        ])
        #expect(mixed.mandatory.isEmpty)
    }

    @Test("policy: the built-in levels are the published rules; a unit's own levels replace them; bad values name the key")
    func policy() throws {
        let builtIn = try TestSupport.defaultPolicy().auth
        #expect(builtIn == AuthPolicy())
        #expect(builtIn.levels[.confidential] == [AuthPolicy.Method(factor: .password, minLength: 8, maxAgeDays: 30)])
        #expect(builtIn.levels[.secret]?.count == 2 && builtIn.levels[.topSecret]?.first?.factor == .biometric)
        let own = try TestSupport.policy("""
            id: t
            version: "1"
            profile: classified
            auth:
              levels:
                mimi:
                  - {factor: password, min_length: 12, max_age_days: 90, min_classes: 3}
              sshd: allowed
            """)
        #expect(own.auth.levels.keys.map(\.rawValue) == ["秘密"])
        #expect(own.auth.level(for: .topSecret)?.level == .confidential)
        #expect(own.auth.level(for: .topSecret)?.reason.contains("has no entry in auth.levels") == true)
        #expect(own.auth.sshd == .allowed && own.auth.maxDeny == 5)
        #expect(throws: MijianError.self) {
            try TestSupport.policy("id: t\nversion: \"1\"\nprofile: classified\nauth:\n  levels:\n    秘密:\n      - {factor: password}\n")
        }
        do {
            _ = try TestSupport.policy("id: t\nversion: \"1\"\nprofile: classified\nauth:\n  lockout: {max_deny: 0}\n")
            Issue.record("max_deny 0 was accepted")
        } catch {
            #expect("\(error)".contains("auth.lockout.max_deny"))
        }
    }
}
