"""The five shipped profiles (scripts/profiles/*.lua) in a running vocd: auto-assignment right
after classification, escalation notifications on the `journal` log notifier, the documents'
closure guards (409 with the guard's message), custom events and the clocks they move.

Each test starts vocd with one profile, the `workdays` calendar and a `journal` log notifier,
as etc/vocd.yaml ships them, and walks a case through the document's process over the API.
The classification of many texts is checked offline by tests/profiles (ctest profiles/*).
"""

import os
import sys
import time
import unittest
from datetime import datetime, timedelta, timezone

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vocd_harness import TOKENS, Vocd  # noqa: E402

SOURCE = os.environ.get("VOC_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

CALENDARS = {
    "workdays": {
        "time_zone": "Asia/Shanghai",
        "hours": {"mon": "09:00-18:00", "tue": "09:00-18:00", "wed": "09:00-18:00",
                  "thu": "09:00-18:00", "fri": "09:00-18:00"},
    },
}

MANAGEMENT_TOKEN = "it-mgmt-3d9e11"


def parse_time(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class ProfileCase(unittest.TestCase):
    PROFILE = None

    def start(self, tokens=None):
        cfg = {
            "profile": os.path.join(SOURCE, "scripts", "profiles", self.PROFILE + ".lua"),
            "calendars": CALENDARS,
            "notifiers": [{"name": "journal", "type": "log"}],
        }
        return Vocd(config_extra=cfg, tokens=tokens)

    def case(self, v, cid, token="admin"):
        st, _, body = v.request("GET", "/api/v1/cases/%d" % cid, token=token)
        self.assertEqual(st, 200, body)
        return body

    def post(self, v, cid, type_, status=201, note=None, **data):
        body = {"type": type_, "data": data}
        if note is not None:
            body["note"] = note
        st, _, reply = v.request("POST", "/api/v1/cases/%d/events" % cid, body)
        self.assertEqual(st, status, "%s on case %d: %r" % (type_, cid, reply))
        return reply

    def refused(self, v, cid, type_, needle, **data):
        """Posting type_ is refused with 409 and a message containing needle."""
        reply = self.post(v, cid, type_, status=409, **data)
        self.assertEqual(reply["error"]["code"], "conflict", reply)
        self.assertIn(needle, reply["error"]["message"])
        return reply["error"]["message"]

    def events(self, case, type_):
        return [e for e in case["events"] if e["type"] == type_]

    def clock(self, case, name, cycle=1):
        for c in case["clocks"]:
            if c["name"] == name and c.get("cycle", 1) == cycle:
                return c
        self.fail("no clock %s (cycle %d) in %r" % (name, cycle,
                                                     [(c["name"], c.get("cycle"))
                                                      for c in case["clocks"]]))

    def assert_assigned(self, case, department, collaborators):
        assigned = self.events(case, "assigned")
        self.assertEqual(len(assigned), 1, case["events"])
        self.assertEqual(assigned[0]["actor"], "rules")
        self.assertEqual(assigned[0]["data"]["department"], department)
        self.assertEqual(assigned[0]["data"]["collaborators"], collaborators)
        classified = self.events(case, "classified")[0]
        self.assertLess(classified["seq"], assigned[0]["seq"])
        self.assertEqual(case["state"], "assigned")
        self.assertEqual(case["classification"]["department"], department)

    def wait_notification(self, v, cid, text):
        return v.wait_log(r"notify/journal: case=%d .*%s" % (cid, text), timeout=15)


class TestVocGeneral(ProfileCase):
    PROFILE = "voc-general"

    def test_routing_major_and_effect_tracking(self):
        with self.start() as v:
            cid = v.create_case(channel="hotline", subject="電飯煲無法加熱",
                                text="用了三天就不能加熱了, 要求換新機",
                                customer={"name": "張偉", "contact": "13812345678"})
            case = self.case(v, cid)
            c = case["classification"]
            self.assertEqual((c["kind"], c["category"], c["severity"], c["priority"]),
                             ("complaint", "产品质量", "一般", 2))
            # 五(二)1: quality goes to R&D and production (and quality management follows it).
            self.assert_assigned(case, "研发部", ["生产部", "质量管理部"])
            self.assertEqual(self.clock(case, "transfer")["status"], "met")
            self.assertEqual(self.clock(case, "transfer")["calendar"], "workdays")
            self.assertEqual(self.clock(case, "respond")["target_s"], 8 * 3600)
            self.assertEqual(self.clock(case, "plan")["target_s"], 18 * 3600)

            service = v.create_case(channel="email", text="客服态度很差, 说话不耐烦还挂电话")
            self.assert_assigned(self.case(v, service), "客服部", ["销售部"])

            major = v.create_case(channel="social", text="热水壶底座冒烟, 有安全隐患!")
            c = self.case(v, major)["classification"]
            self.assertEqual((c["severity"], c["priority"]), ("重大", 1))
            self.assertEqual(c["tags"], ["major", "safety"])
            self.assertEqual(self.clock(self.case(v, major), "respond")["target_s"], 2 * 3600)
            self.wait_notification(v, major, "重大VOC")

            # 七(三)1: an improvement is evaluated before the case closes.
            self.refused(v, cid, "effect_evaluated", "improvement", effective=True)
            self.post(v, cid, "planned")
            self.post(v, cid, "improvement", measure="更换加热盘供应商")
            self.assertEqual(self.clock(self.case(v, cid), "effect")["target_s"], 14 * 86400)
            self.post(v, cid, "resolved")
            self.refused(v, cid, "closed", "effect_evaluated")
            self.post(v, cid, "effect_evaluated", effective=False, indicator="返修率")
            case = self.case(v, cid)
            self.assertIn("improvement_ineffective", case["classification"]["tags"])
            self.assertEqual(self.clock(case, "effect")["status"], "met")
            self.wait_notification(v, cid, "效果未达标")
            self.post(v, cid, "closed")
            self.assertEqual(self.case(v, cid)["state"], "closed")

            # A case without an improvement closes as the core allows.
            self.post(v, service, "resolved")
            self.post(v, service, "closed")


class TestSuggestionHandling(ProfileCase):
    PROFILE = "suggestion-handling"

    def test_chain_guards_and_reopen_until_satisfied(self):
        with self.start() as v:
            cid = v.create_case(channel="hotline", text="洗衣機脫水時異響很大, 售後來過一次還是一樣",
                                customer={"name": "孫麗", "contact": "13788889999"})
            case = self.case(v, cid)
            self.assert_assigned(case, "质量部", ["售后服务部"])
            self.assertEqual(self.clock(case, "classify")["status"], "met")
            self.assertEqual(self.clock(case, "classify")["target_s"], 7200)
            self.assertEqual(self.clock(case, "plan")["target_s"], 86400)

            # 四(三)2: no resolution without a plan filed with customer service.
            self.refused(v, cid, "resolved", "处理方案")
            due = (datetime.now(timezone.utc) + timedelta(days=3)).replace(microsecond=0)
            self.post(v, cid, "planned", due=due.strftime("%Y-%m-%dT%H:%M:%SZ"))
            case = self.case(v, cid)
            planned_at = parse_time(self.events(case, "planned")[0]["at"])
            resolve = self.clock(case, "resolve")
            # 四(四)1: not solvable at once -> the promised date.
            self.assertAlmostEqual(resolve["target_s"], due.timestamp() - planned_at, delta=0.01)
            self.assertEqual(self.clock(case, "plan")["status"], "met")

            self.refused(v, cid, "result_to_service", "resolved")
            self.post(v, cid, "resolved")
            # 四(五)1: the department hands the result to customer service first.
            self.refused(v, cid, "replied", "result_to_service")
            self.post(v, cid, "result_to_service")
            case = self.case(v, cid)
            self.assertEqual(self.clock(case, "result")["status"], "met")
            self.assertEqual(self.clock(case, "reply")["target_s"], 48 * 3600)
            self.post(v, cid, "replied")
            case = self.case(v, cid)
            self.assertEqual(self.clock(case, "revisit")["target_s"], 7 * 86400)
            self.refused(v, cid, "closed", "回访")

            # 四(五)2: unsatisfied -> reopened by the profile, handled again.
            self.post(v, cid, "revisited", satisfaction=1)
            case = self.case(v, cid)
            self.assertEqual(case["state"], "reopened")
            self.assertEqual(case["reopen_count"], 1)
            reopened = self.events(case, "reopened")
            self.assertEqual(len(reopened), 1)
            self.assertEqual(reopened[0]["actor"], "rules")
            self.assertIn("满意度 1", reopened[0]["note"])
            self.assertEqual(self.clock(case, "revisit", 1)["status"], "met")
            second = self.clock(case, "plan", 2)
            self.assertEqual(second["status"], "running")
            self.assertEqual(second["started_at"], reopened[0]["at"])
            self.assertIsNone(second["stopped_at"])
            # The revisit of the second round counts from its answer, not from the reopening.
            self.assertEqual([c for c in case["clocks"] if c["name"] == "revisit"
                              and c.get("cycle", 1) == 2], [])
            self.wait_notification(v, cid, "回访不满意")
            self.refused(v, cid, "closed", "")  # the core: reopened cannot close

            self.refused(v, cid, "resolved", "处理方案")  # a new plan for the new round
            self.post(v, cid, "planned")
            case = self.case(v, cid)
            self.assertEqual(self.clock(case, "plan", 2)["status"], "met")
            self.assertEqual(self.clock(case, "resolve", 2)["status"], "running")
            self.post(v, cid, "resolved")
            self.post(v, cid, "result_to_service")
            case = self.case(v, cid)
            self.assertEqual(self.clock(case, "result", 2)["status"], "met")
            self.assertEqual([c for c in case["clocks"] if c["name"] == "revisit"
                              and c.get("cycle", 1) == 2], [])
            self.post(v, cid, "replied")
            case = self.case(v, cid)
            replied = self.events(case, "replied")
            self.assertEqual(len(replied), 2)
            revisit = self.clock(case, "revisit", 2)
            self.assertEqual(revisit["started_at"], replied[1]["at"])
            self.assertEqual(revisit["status"], "running")
            self.assertEqual(revisit["target_s"], 7 * 86400)
            self.assertAlmostEqual(parse_time(revisit["due_at"]) - parse_time(replied[1]["at"]),
                                   7 * 86400, delta=0.01)
            self.post(v, cid, "revisited", satisfaction=5)
            case = self.case(v, cid)
            self.assertEqual(case["state"], "revisited")
            self.assertEqual(self.clock(case, "revisit", 2)["status"], "met")
            self.post(v, cid, "closed")
            self.assertEqual(self.case(v, cid)["state"], "closed")


class TestIatf16949(ProfileCase):
    PROFILE = "iatf16949-automotive"

    def test_major_complaint_closure_conditions(self):
        with self.start() as v:
            cid = v.create_case(
                channel="email", customer={"name": "总装车间 张主任"},
                text="今天早班总装线因贵司线束断线导致停线2小时, 请立即派人到现场处理, "
                     "24小时内提交8D报告, 结案需经我方确认。",
                fields={"customer_sla": {"respond": "1h"}})
            case = self.case(v, cid)
            c = case["classification"]
            self.assertEqual((c["category"], c["severity"], c["priority"]),
                             ("质量", "重大质量问题", 1))
            self.assert_assigned(case, "质量部", ["销售部", "技术中心", "生产部"])
            for logged in ("complaint_logged", "8d_requested", "field_service_requested"):
                self.assertEqual(len(self.events(case, logged)), 1, logged)
            targets = {name: self.clock(case, name)["target_s"]
                       for name in ("respond", "countermeasure", "report_8d", "customer_closure",
                                    "internal_closure", "field_service")}
            # 6.2 / 6.3.1 "若顾客有规定时依顾客规定执行": the customer_sla field sets respond,
            # the text's "24小时内提交8D报告" the 8D report; the rest are the defaults.
            self.assertEqual(targets, {"respond": 3600, "countermeasure": 86400,
                                       "report_8d": 24 * 3600, "customer_closure": 7 * 86400,
                                       "internal_closure": 30 * 86400,
                                       "field_service": 3 * 86400})
            self.wait_notification(v, cid, "专案小组")

            self.post(v, cid, "acknowledged")
            self.refused(v, cid, "customer_closed", "countermeasure")
            self.refused(v, cid, "countermeasure", "containment")
            self.post(v, cid, "containment", note="在库品1200件全检, 在制品隔离")
            self.post(v, cid, "countermeasure", note="临时增加端子拉力100%检测")
            self.post(v, cid, "field_service_done")
            self.post(v, cid, "8d_submitted")
            self.post(v, cid, "customer_closed")
            case = self.case(v, cid)
            for name in ("respond", "countermeasure", "report_8d", "customer_closure",
                         "field_service"):
                self.assertEqual(self.clock(case, name)["status"], "met", name)

            self.post(v, cid, "planned")
            self.post(v, cid, "resolved")
            message = self.refused(v, cid, "closed", "batch_clean: 0/2")
            self.assertIn("preventive_action", message)
            self.assertIn("customer_approved", message)
            self.post(v, cid, "batch_clean", batch="20261125")
            self.post(v, cid, "batch_defect", batch="20261126")
            self.assertIn("recurrence", self.case(v, cid)["classification"]["tags"])
            self.post(v, cid, "batch_clean", batch="20261127")
            self.refused(v, cid, "closed", "batch_clean: 1/2")
            self.post(v, cid, "batch_clean", batch="20261128")
            self.post(v, cid, "preventive_action", note="压接工序增加CCD检测")
            message = self.refused(v, cid, "closed", "customer_approved")
            self.assertNotIn("batch_clean", message)
            self.assertNotIn("preventive_action", message)
            self.post(v, cid, "customer_approved")
            self.post(v, cid, "closed")
            case = self.case(v, cid)
            self.assertEqual(case["state"], "closed")
            self.assertEqual(self.clock(case, "internal_closure")["status"], "met")

    def test_general_complaint_without_approval_and_inquiry(self):
        with self.start() as v:
            cid = v.create_case(channel="email",
                                text="本月第二批货又延误了两天才到货, 我们非常不满。")
            case = self.case(v, cid)
            self.assertEqual(case["classification"]["severity"], "一般交付问题")
            self.assert_assigned(case, "生产部", ["销售部"])
            self.assertEqual(self.events(case, "8d_requested"), [])
            self.post(v, cid, "resolved")
            self.post(v, cid, "batch_clean")
            self.post(v, cid, "batch_clean")
            self.refused(v, cid, "closed", "preventive_action")
            self.post(v, cid, "preventive_action")
            self.post(v, cid, "closed")

            # A deadline the customer writes (Traditional script, working days) replaces
            # the document's one day for cause and short-term countermeasure (6.3.1).
            tw = v.create_case(channel="email", subject="客訴：支架毛刺",
                               text="貴司交付的支架毛刺超差，請於兩個工作日內回覆原因分析與臨時對策。")
            case = self.case(v, tw)
            counter = self.clock(case, "countermeasure")
            self.assertEqual(counter["target_s"], 2 * 86400)
            self.assertAlmostEqual(parse_time(counter["due_at"]) - parse_time(counter["started_at"]),
                                   2 * 86400, delta=0.01)
            self.assertEqual(self.clock(case, "respond")["target_s"], 2 * 3600)
            self.assertEqual(self.clock(case, "customer_closure")["target_s"], 7 * 86400)

            # An inquiry is no complaint: nothing logged, no complaint deadlines.
            q = v.create_case(channel="web", text="请提供XK-200型号的技术参数")
            case = self.case(v, q)
            self.assert_assigned(case, "技术中心", ["销售部"])
            self.assertEqual(self.events(case, "complaint_logged"), [])
            self.assertEqual(sorted(c["name"] for c in case["clocks"]), ["respond"])
            self.post(v, q, "resolved")
            self.post(v, q, "closed")


class TestProductFeedback(ProfileCase):
    PROFILE = "product-feedback"

    def test_serious_escalation_and_verification(self):
        tokens = [
            {"name": "admin", "role": "admin", "token": TOKENS["admin"]},
            {"name": "mgmt", "role": "agent", "token": MANAGEMENT_TOKEN,
             "departments": ["管理层"]},
        ]
        with self.start(tokens=tokens) as v:
            cid = v.create_case(channel="social", text="充電器使用時發燙冒煙, 存在安全隱患!")
            case = self.case(v, cid)
            c = case["classification"]
            self.assertEqual((c["category"], c["severity"], c["priority"]), ("质量问题", "严重", 1))
            # 三(三)3: management is told at once and can see the case.
            self.assert_assigned(case, "生产部", ["质量控制部", "研发部", "管理层"])
            escalated = self.events(case, "escalated")
            self.assertEqual(len(escalated), 1)
            self.assertEqual(escalated[0]["data"], {"to": "管理层"})
            self.wait_notification(v, cid, "管理层")
            self.case(v, cid, token="mgmt")
            self.assertEqual(self.clock(case, "plan")["target_s"], 4 * 3600)
            self.assertEqual(self.clock(case, "plan")["calendar"], "workdays")

            minor = v.create_case(channel="web", source="partner",
                                  text="部分包装盒外观有轻微划痕, 不影响使用",
                                  customer={"name": "赵经理"}, fields={"合作伙伴": "华东经销商"})
            case = self.case(v, minor)
            self.assertEqual(case["classification"]["severity"], "轻微")
            self.assertEqual(case["classification"]["tags"], ["source:partner"])
            self.assertEqual(self.events(case, "escalated"), [])
            st, _, _ = v.request("GET", "/api/v1/cases/%d" % minor, token="mgmt")
            self.assertEqual(st, 404)

            # 五(四)-(五): quality control verifies before the reporter is told.
            self.post(v, cid, "resolved")
            self.refused(v, cid, "replied", "verified")
            self.refused(v, cid, "closed", "verified")
            self.post(v, cid, "verified")
            self.post(v, cid, "replied")
            self.post(v, cid, "revisited", satisfaction=2)
            self.assertIn("unsatisfied", self.case(v, cid)["classification"]["tags"])
            self.post(v, cid, "closed")
            # A fix found wanting after the answer: new handling deadlines from the reopening
            # (五(一)2), verified again before the next reply.
            self.post(v, cid, "reopened")
            case = self.case(v, cid)
            reopened = self.events(case, "reopened")[0]
            for name, target in (("plan", 4 * 3600), ("resolve", 18 * 3600)):
                second = self.clock(case, name, 2)
                self.assertEqual(second["started_at"], reopened["at"], name)
                self.assertEqual(second["target_s"], target, name)
                self.assertEqual(second["calendar"], "workdays", name)
                self.assertEqual(second["status"], "running", name)
                self.assertIsNotNone(second["due_at"], name)
            self.post(v, cid, "resolved")
            self.assertEqual(self.clock(self.case(v, cid), "resolve", 2)["status"], "met")
            self.refused(v, cid, "replied", "verified")


class TestFoodFactory(ProfileCase):
    PROFILE = "food-factory"

    def test_food_safety_first(self):
        with self.start() as v:
            cid = v.create_case(channel="hotline", text="酸奶里喝出一根头发, 孩子已经喝了半瓶",
                                customer={"name": "王女士", "contact": "13912345678"},
                                fields={"承诺期限": "48小时"})
            case = self.case(v, cid)
            c = case["classification"]
            self.assertEqual((c["kind"], c["category"], c["severity"], c["priority"]),
                             ("complaint", "食品安全", "重大", 1))
            self.assert_assigned(case, "质量管理部", ["生产部", "客户服务部"])
            self.assertEqual(self.clock(case, "promise")["target_s"], 48 * 3600)
            self.assertEqual(self.clock(case, "contact")["target_s"], 2 * 3600)
            self.wait_notification(v, cid, "领导小组")

            self.refused(v, cid, "rectified", "investigated")
            self.post(v, cid, "acknowledged")
            self.post(v, cid, "resolved")
            self.refused(v, cid, "replied", "investigated")
            self.post(v, cid, "investigated", root_cause="包装车间发网佩戴不规范")
            self.post(v, cid, "replied")
            self.assertEqual(self.clock(self.case(v, cid), "promise")["status"], "met")
            self.refused(v, cid, "closed", "rectified")
            self.post(v, cid, "rectified")
            self.refused(v, cid, "closed", "revisited")
            self.post(v, cid, "revisited", satisfaction=2)
            case = self.case(v, cid)
            self.assertIn("unsatisfied", case["classification"]["tags"])
            self.wait_notification(v, cid, "不满意")
            self.post(v, cid, "closed")

            # Without a promised deadline: the default for the severity.
            taste = v.create_case(channel="survey", text="希望推出低糖口味的燕麦饼干")
            case = self.case(v, taste)
            self.assertEqual(case["classification"]["category"], "口味与新品")
            self.assert_assigned(case, "研发部", ["销售部"])
            self.assertEqual(self.clock(case, "promise")["target_s"], 15 * 86400)
            self.post(v, taste, "resolved")
            self.post(v, taste, "closed")  # a suggestion closes without a revisit

            # Rule failures would show as rule_error tags: none in this run.
            for i in (cid, taste):
                self.assertNotIn("rule_error", self.case(v, i)["classification"]["tags"])
            self.assertNotIn("WARN rules", v.log())


if __name__ == "__main__":
    unittest.main(verbosity=2)
