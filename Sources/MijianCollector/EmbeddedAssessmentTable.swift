// Generated from Policies/self-assessment.zh.yaml; a test checks it matches the file.
// Edit the YAML file, then regenerate with the command in Tests/MijianCollectorTests/README.md.

/// The self-assessment table built into the collector.
public enum EmbeddedAssessmentTable {
    /// `Policies/self-assessment.zh.yaml`, byte for byte.
    public static let selfAssessmentZH: String = #"""
# 机关、单位保密自查自评表 — the unit's self-assessment table for mijian-collector.
# Areas 一 … 十四 and their items follow section 四 of the self-assessment rules
# (../shared/regulation/self-assessment-rules.zh.txt). Points differ between regions and years:
# a unit edits them here, never in code. Items 1–50 of the printed score tables add up to 100;
# here every item of the fourteen areas carries its points and they add up to 100.
#
# rules:  rule ids whose evidence decides the item (machine rules from the agents' reports and
#         unit.* rules the collector computes across machines); an item without rules is
#         answered by people in answers.yaml (符合 / 不符合 / 不适用, with a note).
# hosts:  whose evidence counts: classified (default), unclassified or all.
id: bm-self-assessment
version: "2026.1"
title: 机关、单位保密自查自评
title_en: Secrecy self-inspection and self-assessment
thresholds:
  meets: 90          # ≥ 90 % of the applicable items' points: 符合要求
  basically: 80      # 80–89 %: 基本符合; below 80 %: 不符合
areas:
  - id: 一
    title: 保密工作领导责任制落实情况
    title_en: Leadership responsibility for secrecy work
    items:
      - {id: 一.1, points: 2, text: 主要负责人对保密工作部署和落实提出明确要求，听取保密工作情况汇报并研究解决相关问题，将履行保密工作责任制情况纳入年度考评和考核内容，为保密工作开展提供保障, text_en: "The head gives clear requirements, hears reports, includes secrecy duties in annual appraisal and provides resources"}
      - {id: 一.2, points: 1, text: 分管保密工作负责人坚持保密委员会（保密工作领导小组）议事制度，研究部署保密工作并组织检查，及时组织查处泄密事件和违规行为, text_en: "The leader in charge runs the secrecy committee, plans and inspects, and pursues leaks and violations"}
      - {id: 一.3, points: 1, text: 分管业务工作负责人对分管业务范围内的保密工作提出明确要求并督促检查，支持保密工作机构和人员开展工作, text_en: "Business leaders set and inspect secrecy requirements in their fields and support the secrecy office"}
      - {id: 一.4, points: 1, text: 内设机构负责人掌握本部门保密工作情况，对涉密人员进行保密教育和管理，定期开展保密自查自评，及时整改存在的问题, text_en: "Department heads know their secrecy work, educate their cleared staff and self-inspect regularly"}
  - id: 二
    title: 保密制度建设情况
    title_en: Secrecy rules and procedures
    items:
      - {id: 二.1, points: 2, text: 结合工作实际建立健全保密工作责任制、定密管理、涉密人员管理、国家秘密载体管理、信息系统和信息设备管理等各项保密制度, text_en: "A complete set of secrecy rules fitted to the unit's work"}
      - {id: 二.2, points: 1, text: 保密制度具有可操作性，责任追究和奖惩措施明确具体, text_en: "The rules are workable, with clear accountability, rewards and sanctions"}
      - {id: 二.3, points: 1, text: 根据情况变化及时修订完善相关保密制度, text_en: "The rules are revised when circumstances change"}
  - id: 三
    title: 保密宣传教育培训情况
    title_en: Secrecy education and training
    items:
      - {id: 三.1, points: 2, text: 对年度保密宣传教育工作做出安排并组织落实, text_en: "Annual secrecy education is planned and carried out"}
      - {id: 三.2, points: 1, text: 及时传达学习上级保密工作指示、文件和有关法规制度, text_en: "Instructions, documents and regulations from above are passed on and studied"}
      - {id: 三.3, points: 1, text: 组织涉密人员保密知识技能培训，或者按要求参加保密行政管理部门组织的培训, text_en: "Cleared staff are trained or attend the administration's training"}
  - id: 四
    title: 涉密人员管理情况
    title_en: Cleared personnel
    items:
      - {id: 四.1, points: 2, text: 准确界定涉密岗位和涉密人员的涉密等级, text_en: "Classified posts and staff clearance levels are defined accurately"}
      - {id: 四.2, points: 2, text: 涉密人员上岗前进行审查和培训，并组织签订保密承诺书, text_en: "Staff are vetted, trained and sign a secrecy pledge before taking up a post"}
      - {id: 四.3, points: 1, text: 涉密人员在岗期间履行本岗位保密职责，定期自查并及时整改，因私出国（境）按规定履行审批手续, text_en: "Staff in post keep their duties, self-inspect, and have private travel abroad approved"}
      - {id: 四.4, points: 1, text: 涉密人员离岗前监督其清退涉密载体，确定脱密期管理措施, text_en: "Leaving staff return classified media and enter a decontamination period"}
  - id: 五
    title: 国家秘密确定、变更和解除情况
    title_en: Classifying, changing and declassifying state secrets
    items:
      - {id: 五.1, points: 2, text: 依法明确定密责任人及其定密权限, text_en: "Persons responsible for classification and their authority are designated"}
      - {id: 五.2, points: 2, text: 依法确定并标明国家秘密事项密级和保密期限, text_en: "Classification levels and periods are set and marked"}
      - {id: 五.3, points: 1, text: 不将依法应当公开的事项确定为国家秘密, text_en: "Nothing that must be public is classified"}
      - {id: 五.4, points: 1, text: 根据情况变化及时变更和解除国家秘密事项密级, text_en: "Classifications are changed or lifted in time"}
  - id: 六
    title: 国家秘密载体管理情况
    title_en: Classified media and material
    items:
      - {id: 六.1, points: 2, text: 国家秘密载体制作、收发、传递、复制、使用、保存、维修、销毁等符合保密管理规定, text_en: "Classified media are made, handled, stored, repaired and destroyed by the rules"}
      - {id: 六.2, points: 1, text: 密品的研制、试验、使用、运输、保管、维修、销毁等符合保密管理规定, text_en: "Classified products are handled by the rules"}
      - {id: 六.3, points: 1, text: 根据工作需要确定知悉范围，对知悉机密级以上国家秘密的人员做出书面登记, text_en: "Need-to-know is defined; access to 机密 and above is recorded in writing"}
  - id: 七
    title: 信息系统和信息设备保密管理情况
    title_en: Information systems and devices
    items:
      - {id: 七.1, points: 2, text: 涉密网络的规划、设计、建设、运行、维护选择具有涉密资质的单位承担，并签订保密承诺书, text_en: "The classified network is built and run by certified contractors under signed pledges"}
      - {id: 七.2, points: 3, rules: [audit.system], text: 涉密网络采取身份鉴别、访问控制、安全审计、边界安全防护和信息流转控制等措施，投入使用前经过测评和审批，定期开展安全保密检查和风险评估, text_en: "The classified network has authentication, access control, audit, boundary and flow control, and was evaluated before use"}
      - {id: 七.3, points: 4, rules: [net.internet-route, net.public-dns, net.interfaces, unit.internet], text: 确保涉密网络不接入互联网及其他公共信息网络, text_en: "The classified network is not connected to the internet or any public network"}
      - {id: 七.4, points: 3, rules: [software.prohibited], text: 确保不在非涉密网络、互联网门户网站、互联网邮箱、即时通信工具及公共云服务平台等存储、处理、传输国家秘密信息, text_en: "No classified information on unclassified networks, web sites, mail, messaging or public cloud"}
      - {id: 七.5, points: 2, text: 按照有关规定对互联网接入口数量采取控制措施, text_en: "The number of internet access points is controlled"}
      - {id: 七.6, points: 4, rules: [wireless.hardware, wireless.modules, wireless.history, hardware.channels, usb.storage, net.sockets, traffic.egress, malware.scanner, host.installation, software.prohibited, sharing, auth.password, auth.lockout, auth.accounts, auth.screenlock], text: 涉密计算机采取身份鉴别、访问授权、违规外联监控、病毒查杀、移动存储介质管控等安全保密措施，不安装使用具有无线功能的模块和外围设备, text_en: "Classified computers have identity authentication, access authorisation, outbound-connection monitoring, malware scanning, removable-media control and no wireless modules or peripherals"}
      - {id: 七.7, points: 4, rules: [net.internet-route, net.interfaces, net.sockets, wireless.history, net.history, host.installation, usb.phone, traffic.egress, unit.internet], text: 确保涉密计算机不接入互联网及其他公共信息网络, text_en: "Classified computers never connect to the internet or a public network"}
      - {id: 七.8, points: 3, rules: [data.markings], hosts: unclassified, text: 确保非涉密计算机不存储、处理和传输国家秘密信息, text_en: "Unclassified computers hold, process and transmit no classified information"}
      - {id: 七.9, points: 4, rules: [unit.media-crossuse], text: 确保涉密信息设备与非涉密信息设备之间不交叉使用移动存储介质, text_en: "No removable medium is used on both classified and unclassified devices"}
      - {id: 七.10, points: 3, rules: [agent.health, log.retention, unit.silent, audit.system], text: 保持保密技术防护设施设备的防护性能, text_en: "Protective technology keeps working"}
      - {id: 七.11, points: 3, rules: [usb.storage, usb.history, unit.ledger], text: 建立健全计算机和移动存储介质登记台账，涉密计算机和移动存储介质粘贴密级标识，明确责任人、设备编号等, text_en: "Computers and removable media are in the ledger, labelled, with responsible person and asset number"}
      - {id: 七.12, points: 2, rules: [print.devices, sharing], text: 使用打印机、复印机、传真机等办公自动化设备符合保密管理规定, text_en: "Printers, copiers and fax machines are used by the rules"}
      - {id: 七.13, points: 3, rules: [usb.phone], text: 使用普通手机和专用手机符合保密管理规定, text_en: "Ordinary and dedicated mobile phones are used by the rules"}
  - id: 八
    title: 涉密场所及保密要害部门、部位管理情况
    title_en: Classified premises and key departments
    items:
      - {id: 八.1, points: 2, text: 按照有关规定确定和调整保密要害部门、部位, text_en: "Key departments and places are designated and kept current"}
      - {id: 八.2, points: 2, text: 对保密要害部门、部位采取人防、物防、技防等防护措施, text_en: "Key departments have personnel, physical and technical protection"}
      - {id: 八.3, points: 1, text: 落实禁止无关人员进入涉密场所和保密要害部门、部位的规定, text_en: "Unauthorised people are kept out of classified premises"}
  - id: 九
    title: 涉密会议、活动和货物、工程、服务采购等项目管理情况
    title_en: Classified meetings, events and procurement
    items:
      - {id: 九.1, points: 1, text: 涉密会议、活动使用符合保密要求的场所、设施、设备, text_en: "Classified meetings use compliant venues and equipment"}
      - {id: 九.2, points: 1, text: 主办涉密会议或活动指定人员负责保密管理工作，重要涉密会议或活动制定保密方案并备案, text_en: "Organisers appoint a secrecy officer; important events have a filed secrecy plan"}
      - {id: 九.3, points: 1, text: 对提供涉密货物、工程和服务的单位进行保密审查，提出保密要求，签订保密协议, text_en: "Suppliers of classified goods and services are vetted and sign secrecy agreements"}
  - id: 十
    title: 涉外工作保密管理情况
    title_en: Foreign affairs
    items:
      - {id: 十.1, points: 1, text: 对外交流、合作等活动采取相应保密措施，对有关人员进行保密提醒, text_en: "Foreign exchanges carry secrecy measures and reminders"}
      - {id: 十.2, points: 1, text: 对外提供文件、资料和物品按规定经过保密审查审批，涉及国家秘密的签订保密协议, text_en: "Material given abroad is reviewed; secrets only under agreement"}
      - {id: 十.3, points: 1, text: 出国（境）团组指定专人负责保密工作，进行行前保密教育，落实各项保密措施, text_en: "Delegations abroad have a secrecy officer and a briefing"}
  - id: 十一
    title: 宣传报道和信息公开保密审查情况
    title_en: Publicity and disclosure review
    items:
      - {id: 十一.1, points: 1, text: 对外宣传报道履行保密审查审批程序, text_en: "Publicity is reviewed and approved"}
      - {id: 十一.2, points: 1, text: 信息公开保密审查工作有领导分管、有部门负责、有专人实施, text_en: "Disclosure review has a leader, a department and a person in charge"}
      - {id: 十一.3, points: 1, text: 坚持“先审查、后公开”和“一事一审”原则, text_en: "Review before disclosure, one review per item"}
      - {id: 十一.4, points: 2, text: 确保涉及国家秘密的信息不予公开, text_en: "No classified information is disclosed"}
      - {id: 十一.5, points: 1, text: 建立网站信息发布登记制度，定期组织开展网站保密检查, text_en: "Web publishing is registered and web sites are checked regularly"}
  - id: 十二
    title: 违反保密法律法规行为查处情况
    title_en: Handling violations
    items:
      - {id: 十二.1, points: 2, text: 发生泄密事件按规定及时报告并采取补救措施, text_en: "Leaks are reported at once and remedied"}
      - {id: 十二.2, points: 2, text: 对违反保密法律法规行为及时组织调查, text_en: "Violations are investigated promptly"}
      - {id: 十二.3, points: 1, text: 对违反保密法律法规行为的责任人员依纪依法进行处理, text_en: "Those responsible for violations are dealt with by law and discipline"}
  - id: 十三
    title: 保密组织机构设置、人员配备及经费保障情况
    title_en: Secrecy organisation, staff and funding
    items:
      - {id: 十三.1, points: 2, text: 按规定设立保密工作机构或者指定专人负责保密工作, text_en: "A secrecy office exists or a person is designated"}
      - {id: 十三.2, points: 1, text: 保密工作机构按照有关规定配备保密技术检查装备和工具, text_en: "The secrecy office has technical inspection equipment and tools"}
      - {id: 十三.3, points: 1, text: 保密工作所需经费列入年度财政预算或者收支计划, text_en: "Secrecy work is funded in the annual budget"}
  - id: 十四
    title: 保密工作记录和材料
    title_en: Records of secrecy work
    items:
      - {id: 十四.1, points: 5, text: 机关、单位及内设机构建立保密工作记录，各项保密工作落实情况材料翔实完整, text_en: "Secrecy work is recorded and the records are complete"}
# deductions: aggravating items of the score table: points per case, never more than the item's points.
#   rules: whose failures are the cases; hosts: whose machines count (classified by default);
#   per: machine (default: each machine with a failing finding of any of the rules is one case,
#   however many findings it has) or finding (each failing finding of unit rules, such as each
#   medium that crossed). Without rules, people count the cases in answers.yaml.
deductions:
  - {id: "53", per_case: 4, points: 20, rules: [net.history, traffic.egress, net.internet-route, unit.internet], hosts: classified, per: machine, text: 涉密计算机接入互联网或其他公共信息网络, text_en: "A classified computer connected to the internet or a public network"}
  - {id: "54", per_case: 4, points: 20, rules: [data.markings], hosts: unclassified, per: machine, text: 非涉密计算机存储、处理、传输国家秘密信息, text_en: "An unclassified computer stored, processed or transmitted classified information"}
  - {id: "55", per_case: 4, points: 20, rules: [unit.media-crossuse], per: finding, text: 涉密信息设备与非涉密信息设备之间交叉使用移动存储介质, text_en: "A removable medium crossed between classified and unclassified devices"}
veto:
  id: "59"
  text: 发生严重泄密案件
  text_en: "A serious leak of state secrets occurred"

"""#
}
