"""A deterministic, seeded demo city of Beijing's shape, calibrated to docs/domain.md.

`generate_city(spec, out_dir, base_config_dir)` writes:

- ``out_dir/config/``: the base config's YAML files (and ``sources/``) with a generated
  ``units.yaml`` (the city office, 16 districts and the development zone, ~340 streets and
  townships, ~100 departments and public-service companies) and ``problems.yaml`` (27
  problems in 12 categories, 12 lead units, 54 cooperating units);
- ``out_dir/plan.xlsx``: the one-plan-three-lists workbook (603 plan tasks, 65 policies,
  one responsibility per cooperating unit and problem), as of the demo's "today"
  (``spec.start + spec.days``);
- ``out_dir/tickets.csv``: the canonical ticket export (``config/sources/duban.yaml``),
  streamed one day at a time. ``due_at`` is left empty: Duban computes it.

The same spec gives byte-identical files: every random draw comes from
``numpy.random.default_rng([seed, stream, ...])``; nothing depends on hash() or the clock.
"""

from __future__ import annotations

import contextlib
import shutil
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

# ---------------------------------------------------------------- the spec and the result


@dataclass(frozen=True)
class DemoSpec:
    seed: int = 12345
    start: date = date(2026, 8, 1)
    days: int = 92
    daily_volume: int = 1500
    year: int = 2026
    mail_domain: str = "bj.duban.example"


@dataclass
class DemoFiles:
    config_dir: Path
    plan_workbook: Path
    tickets_csv: Path
    units: int
    problems: int
    plan_tasks: int
    policies: int
    tickets: int


# ---------------------------------------------------------------- the city: static tables


def _words(text: str) -> list[str]:
    """The space-separated words of `text` (keeps the long name lists compact)."""
    return text.split()


CITY_NAME = "市民热线服务中心"

# (name, resident population in 10,000s, core district (hutongs), streets and townships)
DISTRICTS: list[tuple[str, int, bool, list[str]]] = [
    (
        "东城区",
        70,
        True,
        _words(
            "东华门街道 景山街道 交道口街道 安定门街道 北新桥街道 东四街道 朝阳门街道 建国门街道 "
            "东直门街道 和平里街道 前门街道 崇文门外街道 东花市街道 龙潭街道 体育馆路街道 "
            "天坛街道 永定门外街道"
        ),
    ),
    (
        "西城区",
        110,
        True,
        _words(
            "西长安街街道 新街口街道 月坛街道 展览路街道 德胜街道 金融街街道 什刹海街道 "
            "大栅栏街道 天桥街道 椿树街道 陶然亭街道 广安门内街道 牛街街道 白纸坊街道 "
            "广安门外街道"
        ),
    ),
    (
        "朝阳区",
        345,
        False,
        _words(
            "建外街道 朝外街道 呼家楼街道 三里屯街道 左家庄街道 香河园街道 和平街街道 安贞街道 "
            "亚运村街道 小关街道 酒仙桥街道 麦子店街道 团结湖街道 六里屯街道 八里庄街道 "
            "双井街道 劲松街道 潘家园街道 垡头街道 首都机场街道 奥运村街道 望京街道 大屯街道 "
            "东湖街道 南磨房地区 高碑店地区 将台地区 太阳宫地区 小红门地区 十八里店地区 "
            "平房地区 东风地区 来广营地区 常营地区 三间房地区 管庄地区 金盏地区 孙河地区 "
            "崔各庄地区 东坝地区 黑庄户地区 豆各庄地区 王四营地区"
        ),
    ),
    (
        "海淀区",
        313,
        False,
        _words(
            "万寿路街道 永定路街道 羊坊店街道 甘家口街道 紫竹院街道 北下关街道 北太平庄街道 "
            "学院路街道 中关村街道 海淀街道 青龙桥街道 清华园街道 燕园街道 香山街道 清河街道 "
            "花园路街道 西三旗街道 马连洼街道 田村路街道 上地街道 万柳地区 东升地区 曙光街道 "
            "温泉镇 四季青镇 西北旺镇 苏家坨镇 上庄镇"
        ),
    ),
    (
        "丰台区",
        202,
        False,
        _words(
            "右安门街道 太平桥街道 西罗园街道 大红门街道 南苑街道 东高地街道 东铁匠营街道 "
            "六里桥街道 丰台街道 新村街道 长辛店街道 云岗街道 方庄街道 宛平街道 马家堡街道 "
            "和义街道 卢沟桥街道 花乡街道 成寿寺街道 石榴庄街道 玉泉营街道 看丹街道 "
            "五里店街道 青塔街道 北宫镇 王佐镇"
        ),
    ),
    (
        "石景山区",
        57,
        False,
        _words(
            "八宝山街道 老山街道 八角街道 古城街道 苹果园街道 金顶街街道 广宁街道 五里坨街道 "
            "鲁谷街道"
        ),
    ),
    (
        "门头沟区",
        39,
        False,
        _words(
            "大峪街道 城子街道 东辛房街道 大台街道 王平镇 永定镇 龙泉镇 潭柘寺镇 军庄镇 "
            "妙峰山镇 雁翅镇 斋堂镇 清水镇"
        ),
    ),
    (
        "房山区",
        131,
        False,
        _words(
            "城关街道 新镇街道 向阳街道 东风街道 迎风街道 星城街道 拱辰街道 西潞街道 长阳镇 "
            "良乡镇 阎村镇 窦店镇 石楼镇 琉璃河镇 韩村河镇 周口店镇 青龙湖镇 河北镇 长沟镇 "
            "大石窝镇 张坊镇 十渡镇 霞云岭乡 南窖乡 佛子庄乡 大安山乡 史家营乡 蒲洼乡"
        ),
    ),
    (
        "通州区",
        184,
        False,
        _words(
            "中仓街道 新华街道 北苑街道 玉桥街道 潞源街道 通运街道 文景街道 九棵树街道 "
            "临河里街道 杨庄街道 潞邑街道 永顺镇 梨园镇 宋庄镇 张家湾镇 漷县镇 马驹桥镇 "
            "西集镇 台湖镇 永乐店镇 潞城镇 于家务回族乡"
        ),
    ),
    (
        "顺义区",
        132,
        False,
        _words(
            "胜利街道 光明街道 石园街道 空港街道 双丰街道 旺泉街道 仁和镇 后沙峪镇 天竺镇 杨镇 "
            "牛栏山镇 南法信镇 马坡镇 高丽营镇 李桥镇 李遂镇 南彩镇 北务镇 大孙各庄镇 张镇 "
            "龙湾屯镇 木林镇 北小营镇 北石槽镇 赵全营镇"
        ),
    ),
    (
        "昌平区",
        227,
        False,
        _words(
            "城北街道 城南街道 回龙观街道 龙泽园街道 史各庄街道 天通苑北街道 天通苑南街道 "
            "霍营街道 东小口镇 南口镇 马池口镇 沙河镇 阳坊镇 小汤山镇 北七家镇 百善镇 兴寿镇 "
            "崔村镇 南邵镇 长陵镇 十三陵镇 流村镇"
        ),
    ),
    (
        "大兴区",
        180,
        False,
        _words(
            "兴丰街道 林校路街道 清源街道 观音寺街道 天宫院街道 高米店街道 黄村镇 旧宫镇 "
            "西红门镇 北臧村镇 庞各庄镇 榆垡镇 礼贤镇 魏善庄镇 青云店镇 长子营镇 安定镇 "
            "采育镇"
        ),
    ),
    (
        "怀柔区",
        44,
        False,
        _words(
            "泉河街道 龙山街道 怀柔镇 雁栖镇 庙城镇 北房镇 杨宋镇 桥梓镇 怀北镇 汤河口镇 渤海镇 "
            "九渡河镇 琉璃庙镇 宝山镇 长哨营满族乡 喇叭沟门满族乡"
        ),
    ),
    (
        "平谷区",
        46,
        False,
        _words(
            "滨河街道 兴谷街道 渔阳地区 峪口地区 马坊地区 金海湖地区 东高村镇 山东庄镇 "
            "南独乐河镇 大华山镇 夏各庄镇 马昌营镇 王辛庄镇 大兴庄镇 刘家店镇 镇罗营镇 "
            "黄松峪乡 熊儿寨乡"
        ),
    ),
    (
        "密云区",
        53,
        False,
        _words(
            "鼓楼街道 果园街道 檀营地区 密云镇 溪翁庄镇 西田各庄镇 十里堡镇 河南寨镇 巨各庄镇 "
            "穆家峪镇 太师屯镇 高岭镇 不老屯镇 冯家峪镇 古北口镇 大城子镇 东邵渠镇 北庄镇 "
            "新城子镇 石城镇"
        ),
    ),
    (
        "延庆区",
        35,
        False,
        _words(
            "儒林街道 百泉街道 香水园街道 延庆镇 康庄镇 八达岭镇 永宁镇 旧县镇 张山营镇 四海镇 "
            "千家店镇 沈家营镇 大榆树镇 井庄镇 刘斌堡乡 大庄科乡 香营乡 珍珠泉乡"
        ),
    ),
    ("北京经济技术开发区", 30, False, _words("荣华街道 博兴街道 瀛海镇 亦庄镇")),
]

# (code, name, kind): city departments (委办局) and public-service companies, parent `city`.
DEPARTMENTS: list[tuple[str, str, str]] = [
    ("housing", "市住房城乡建设委", "department"),
    ("hrss", "市人力资源社会保障局", "department"),
    ("samr", "市市场监管局", "department"),
    ("urban", "市城市管理委", "department"),
    ("transport", "市交通委", "department"),
    ("water-affairs", "市水务局", "department"),
    ("commerce", "市商务局", "department"),
    ("education", "市教委", "department"),
    ("health", "市卫生健康委", "department"),
    ("civil", "市民政局", "department"),
    ("planning", "市规划自然资源委", "department"),
    ("ecology", "市生态环境局", "department"),
    ("agriculture", "市农业农村局", "department"),
    ("psb", "市公安局", "department"),
    ("traffic-police", "市公安局公安交通管理局", "department"),
    ("landscaping", "市园林绿化局", "department"),
    ("culture-tourism", "市文化和旅游局", "department"),
    ("sport", "市体育局", "department"),
    ("justice", "市司法局", "department"),
    ("finance", "市财政局", "department"),
    ("ndrc", "市发展改革委", "department"),
    ("economy-it", "市经济和信息化局", "department"),
    ("science", "市科委、中关村管委会", "department"),
    ("emergency", "市应急管理局", "department"),
    ("fire", "市消防救援总队", "department"),
    ("medical-security", "市医保局", "department"),
    ("veterans", "市退役军人事务局", "department"),
    ("tax", "市税务局", "department"),
    ("urban-enforcement", "市城管执法局", "department"),
    ("financial-regulation", "市地方金融管理局", "department"),
    ("gov-services", "市政务服务和数据管理局", "department"),
    ("housing-fund", "市住房公积金管理中心", "department"),
    ("civil-defense", "市人防办", "department"),
    ("ethnic-religion", "市民族宗教委", "department"),
    ("audit", "市审计局", "department"),
    ("statistics", "市统计局", "department"),
    ("drug-admin", "市药监局", "department"),
    ("ip", "市知识产权局", "department"),
    ("radio-tv", "市广电局", "department"),
    ("press", "市新闻出版局", "department"),
    ("cultural-relics", "市文物局", "department"),
    ("sasac", "市国资委", "department"),
    ("petition", "市信访办", "department"),
    ("women", "市妇联", "department"),
    ("disabled", "市残联", "department"),
    ("youth", "团市委", "department"),
    ("trade-union", "市总工会", "department"),
    ("red-cross", "市红十字会", "department"),
    ("weather", "市气象局", "department"),
    ("earthquake", "市地震局", "department"),
    ("postal-admin", "市邮政管理局", "department"),
    ("telecom-admin", "市通信管理局", "department"),
    ("financial-supervision", "国家金融监督管理总局北京监管局", "department"),
    ("customs", "北京海关", "department"),
    ("parks", "市公园管理中心", "department"),
    ("transport-enforcement", "市交通执法总队", "department"),
    ("market-enforcement", "市市场监管综合执法总队", "department"),
    ("eco-enforcement", "市生态环境保护综合执法总队", "department"),
    ("culture-enforcement", "市文化市场综合执法总队", "department"),
    ("grain-reserve", "市粮食和物资储备局", "department"),
    ("health-supervision", "市卫生健康监督所", "department"),
    ("disease-control", "市疾病预防控制中心", "department"),
    ("education-exam", "市教育考试院", "department"),
    ("social-insurance", "市社会保险基金管理中心", "department"),
    ("labor-arbitration", "市劳动人事争议仲裁院", "department"),
    ("labor-inspection", "市劳动保障监察总队", "department"),
    ("real-estate-registration", "市不动产登记事务中心", "department"),
    ("property-service", "市物业服务指导中心", "department"),
    ("consumer-association", "市消费者协会", "department"),
    ("senior-office", "市老龄办", "department"),
    ("rural-revitalization", "市乡村振兴局", "department"),
    ("heating-office", "市供热办", "department"),
    ("internet-info", "市委网信办", "department"),
    ("political-legal", "市委政法委", "department"),
    ("water-group", "市自来水集团", "company"),
    ("gas-group", "市燃气集团", "company"),
    ("power", "市电力公司", "company"),
    ("heating-group", "市热力集团", "company"),
    ("drainage-group", "市排水集团", "company"),
    ("bus-group", "市公交集团", "company"),
    ("subway", "市地铁运营公司", "company"),
    ("mtr", "京港地铁", "company"),
    ("sanitation-group", "市环卫集团", "company"),
    ("unicom", "北京联通", "company"),
    ("mobile", "北京移动", "company"),
    ("telecom", "北京电信", "company"),
    ("gehua", "歌华有线", "company"),
    ("post", "市邮政分公司", "company"),
    ("expressway", "首发集团", "company"),
    ("roads-bridges", "市政路桥集团", "company"),
    ("shoukai", "首开集团", "company"),
    ("capital-airport", "首都机场集团", "company"),
    ("shouqi", "首汽集团", "company"),
    ("static-traffic", "北京静态交通投资运营公司", "company"),
    ("gonglian", "北京公联公司", "company"),
    ("jingneng", "京能集团", "company"),
    ("public-housing", "市保障房中心", "company"),
    ("meituan-bike", "美团单车北京运营公司", "company"),
    ("hello-bike", "哈啰出行北京运营公司", "company"),
    ("didi-bike", "青桔单车北京运营公司", "company"),
    ("bjcg", "北京城建集团", "company"),
    ("bjjg", "北京建工集团", "company"),
]


@dataclass(frozen=True)
class _ProblemDef:
    code: str
    name: str
    category: str
    approach: str
    lead: str
    cooperating: tuple[str, ...]
    ticket_categories: tuple[tuple[str, float], ...]  # (ticket category, share of the problem)
    focus_month: int
    weight: float  # relative ticket volume
    topic: str  # for policy titles
    obj: str  # what the tasks work on
    measures: tuple[str, str]


def _p(
    code: str,
    name: str,
    category: str,
    approach: str,
    lead: str,
    coop: str,
    cats: str,
    focus: int,
    weight: float,
    topic: str,
    obj: str,
    m1: str,
    m2: str,
) -> _ProblemDef:
    parsed = []
    for part in cats.split():
        cat, _, share = part.partition(":")
        parsed.append((cat, float(share or 1)))
    return _ProblemDef(
        code, name, category, approach, lead, tuple(coop.split()), tuple(parsed), focus,
        weight, topic, obj, (m1, m2),
    )  # fmt: skip


PROBLEMS: list[_ProblemDef] = [
    _p("P01", "房产证办证难", "住房", "reform", "planning",
       "housing real-estate-registration tax justice", "房产证办理:0.7 不动产登记:0.3",
       1, 2.0, "国有土地上已售房屋不动产登记历史遗留问题处置", "历史遗留项目",
       "分类梳理历史遗留项目，逐项明确办证路径", "推行容缺受理和并联审批，压缩登记时限"),
    _p("P02", "老旧小区改造", "住房", "governance", "housing",
       "planning finance ndrc urban gas-group heating-group power", "老旧小区改造",
       4, 2.0, "老旧小区综合整治", "老旧小区",
       "编制年度改造项目清单，先征询居民意愿再实施", "统筹水电气热管线改造与楼体节能改造同步施工"),
    _p("P03", "住房租赁纠纷", "住房", "rectification", "housing",
       "samr psb financial-regulation", "住房租赁:0.6 房屋中介:0.4",
       8, 1.5, "住房租赁市场秩序", "租赁企业和中介门店",
       "开展住房租赁市场专项整治，查处克扣押金等行为", "推行租赁合同网签备案和租金资金监管"),
    _p("P04", "拖欠工资", "劳动就业", "governance", "hrss",
       "labor-inspection labor-arbitration housing justice trade-union psb",
       "拖欠工资:0.6 农民工工资:0.4",
       1, 3.0, "保障农民工工资支付", "在建工程项目",
       "落实工资专用账户、实名制管理和总包代发制度", "开展根治欠薪专项行动，快立快调快裁"),
    _p("P05", "社保缴纳和转移接续难", "劳动就业", "reform", "hrss",
       "social-insurance tax medical-security", "社保缴纳",
       9, 1.0, "社会保险经办服务", "社保经办事项",
       "推行社保业务全程网办和跨省通办", "清理补缴、转移接续中的堵点事项"),
    _p("P06", "预付式消费退费难", "消费", "governance", "commerce",
       "samr financial-regulation sport culture-tourism psb consumer-association", "预付卡退费",
       2, 2.5, "单用途预付卡管理", "预付式消费经营者",
       "建立预付资金存管和风险预警机制", "对跑路闭店经营者联合惩戒，畅通退费渠道"),
    _p("P07", "校外培训退费难", "消费", "rectification", "education",
       "samr financial-regulation market-enforcement", "培训退费",
       3, 1.5, "校外培训机构预收费监管", "校外培训机构",
       "全面落实预收费资金监管，超期收费一律整改", "对拒不退费的机构依法查处并公开曝光"),
    _p("P08", "食品安全", "消费", "rectification", "samr",
       "health agriculture market-enforcement drug-admin", "食品安全",
       6, 1.2, "食品安全", "餐饮单位和食品经营者",
       "开展餐饮单位和校园周边食品安全专项检查", "推行明厨亮灶和食品安全追溯"),
    _p("P09", "垃圾清运不及时", "城市管理", "rectification", "urban",
       "sanitation-group ecology housing", "垃圾清运",
       5, 2.0, "生活垃圾分类和清运", "垃圾分类驿站和桶站",
       "优化清运线路和频次，做到日产日清", "落实物业和街乡镇的垃圾分类管理责任"),
    _p("P10", "占道经营", "城市管理", "rectification", "urban",
       "urban-enforcement traffic-police samr transport", "占道经营:0.6 无照游商:0.4",
       7, 1.8, "街面秩序", "重点点位",
       "对游商聚集点位实行定人定岗定责", "规划便民疏导点，疏堵结合"),
    _p("P11", "违法建设", "城市管理", "rectification", "planning",
       "urban-enforcement housing agriculture", "违法建设",
       10, 1.2, "违法建设治理", "违法建设点位",
       "建立违法建设发现、认定和拆除全流程台账", "新增违建零容忍，存量违建分类销账"),
    _p("P12", "物业服务不规范", "物业管理", "governance", "housing",
       "property-service samr civil ndrc", "物业服务",
       2, 3.0, "物业管理", "住宅小区",
       "推动业主委员会（物业管理委员会）组建全覆盖", "建立物业服务企业信用评价和退出机制"),
    _p("P13", "停车难", "交通出行", "governance", "transport",
       "traffic-police static-traffic planning transport-enforcement", "停车难:0.6 小区停车:0.4",
       6, 2.5, "居住区停车治理", "停车资源",
       "挖掘错时共享停车位，推进有偿错时停车", "规范路侧停车电子收费和违停执法"),
    _p("P14", "公交线路不便", "交通出行", "reform", "transport",
       "bus-group subway mtr", "公交线路",
       9, 1.0, "公共交通线网优化", "公交线路",
       "优化调整重复和低效线路，加密通勤线路", "打通地铁站点与居住区之间的接驳公交"),
    _p("P15", "共享单车乱停放", "交通出行", "governance", "transport",
       "traffic-police meituan-bike hello-bike urban", "共享单车",
       4, 1.2, "互联网租赁自行车管理", "重点区域",
       "施划停放区域，推行电子围栏入栏结算", "对运维不力的企业削减投放配额"),
    _p("P16", "供暖不热", "市政公用", "governance", "urban",
       "heating-office heating-group gas-group housing", "供暖不热",
       11, 1.0, "供热服务保障", "供热单位",
       "供暖季前完成管网和设施检修", "建立室温监测和不热诉求快速响应机制"),
    _p("P17", "老楼加装电梯", "住房", "reform", "housing",
       "planning samr finance", "加装电梯",
       5, 0.8, "既有多层住宅加装电梯", "加装电梯项目",
       "简化加装电梯审批流程，推行一站式办理", "落实财政补贴和电梯运维责任"),
    _p("P18", "电动自行车充电难", "市政公用", "governance", "urban",
       "fire power housing samr", "电动车充电",
       8, 1.0, "电动自行车集中充电设施建设", "充电设施点位",
       "在居住小区建设集中充电设施", "清理楼道飞线充电，消除火灾隐患"),
    _p("P19", "义务教育入学难", "教育", "reform", "education",
       "psb housing education-exam", "义务教育入学",
       7, 1.0, "义务教育入学服务", "学区学位",
       "提前公布入学政策和学位预警", "扩充紧缺学区学位供给"),
    _p("P20", "入园难", "教育", "reform", "education",
       "health finance civil", "幼儿入园",
       6, 0.8, "普惠性学前教育", "普惠性幼儿园",
       "新增普惠性学位，落实配套幼儿园移交", "规范民办园收费，扩大普惠覆盖"),
    _p("P21", "农村基础设施薄弱", "农村建设", "governance", "agriculture",
       "transport water-affairs power rural-revitalization", "农村道路:0.5 农村供水:0.5",
       3, 1.2, "农村基础设施提升", "行政村",
       "实施农村公路提级改造和安全生命防护工程", "推进城乡供水一体化，保障农村饮水安全"),
    _p("P22", "农村人居环境脏乱", "农村建设", "rectification", "agriculture",
       "ecology landscaping water-affairs rural-revitalization", "农村环境",
       4, 1.0, "农村人居环境整治", "行政村",
       "开展村庄清洁行动，清理积存垃圾和私搭乱建", "推进农村污水治理和厕所改造"),
    _p("P23", "施工噪声扰民", "生态环境", "rectification", "ecology",
       "housing eco-enforcement urban-enforcement transport", "施工噪声",
       5, 1.5, "建筑施工噪声管控", "建筑工地",
       "严格夜间施工审批，公示许可信息", "对违规夜间施工从严查处并纳入信用记录"),
    _p("P24", "餐饮油烟扰民", "生态环境", "rectification", "ecology",
       "samr urban-enforcement eco-enforcement commerce", "餐饮油烟",
       8, 1.0, "餐饮油烟污染治理", "餐饮单位",
       "推动餐饮单位安装油烟净化设施并定期清洗", "对油烟直排的餐饮单位依法处罚"),
    _p("P25", "看病就医不便", "医疗卫生", "reform", "health",
       "medical-security disease-control drug-admin",
       "医疗服务:0.6 挂号就医:0.4",
       10, 1.5, "改善医疗服务", "医疗机构",
       "推行分时段预约诊疗，减少候诊时间", "整治号贩子和医疗服务乱收费"),
    _p("P26", "居家养老服务不足", "养老服务", "reform", "civil",
       "senior-office health medical-security disabled finance", "养老服务",
       11, 1.0, "居家社区养老服务", "养老服务驿站",
       "完善养老服务驿站布局，扩大助餐助浴服务", "推进适老化改造和家庭养老床位建设"),
    _p("P27", "网络消费纠纷", "消费", "governance", "samr",
       "commerce internet-info postal-admin consumer-association", "网购纠纷",
       12, 1.5, "网络交易监管", "网络经营者",
       "督促平台落实七日无理由退货和先行赔付", "建立网络消费纠纷在线调解机制"),
]  # fmt: skip

# Units that may top up the cooperating lists to the 54 of the domain (added in this order).
COOPERATING_RESERVE = _words(
    "emergency gov-services petition political-legal economy-it veterans statistics weather "
    "culture-enforcement housing-fund sasac parks roads-bridges drainage-group"
)
COOPERATING_TOTAL = 54

APPROACH_CN = {"reform": "改革", "governance": "治理", "rectification": "整治"}

# (category, relative weight, share dispatched to departments, departments, located)
GENERAL_CATEGORIES: list[tuple[str, float, float, str, bool]] = [
    ("噪声扰民", 10, 0.10, "psb ecology", True),
    ("道路维修", 6, 0.30, "roads-bridges transport", True),
    ("违章停车", 7, 0.30, "traffic-police", True),
    ("供水", 6, 0.70, "water-group water-affairs", True),
    ("燃气", 3, 0.75, "gas-group", True),
    ("供电", 4, 0.70, "power", True),
    ("排水", 4, 0.40, "drainage-group water-affairs", True),
    ("路灯照明", 3, 0.20, "urban", True),
    ("树木绿化", 3, 0.10, "landscaping", True),
    ("公共设施", 5, 0.10, "urban", True),
    ("交通信号", 2, 0.60, "traffic-police", True),
    ("出租车", 3, 0.90, "transport-enforcement shouqi", False),
    ("地铁", 2, 0.95, "subway mtr", False),
    ("通信网络", 3, 0.90, "unicom mobile telecom gehua", True),
    ("户籍证件", 3, 0.60, "psb", False),
    ("市容环境", 6, 0.10, "urban-enforcement urban", True),
    ("宠物扰民", 3, 0.10, "psb", True),
    ("消防安全", 2, 0.20, "fire", True),
    ("房屋漏水", 5, 0.10, "housing", True),
    ("咨询建议", 8, 0.30, "gov-services", False),
    ("邮政快递", 3, 0.80, "post postal-admin", False),
]
GENERAL_SHARE = 0.60  # of all tickets; the problems' categories get the rest
DEPARTMENT_SHARE = 0.30  # of all tickets go to departments and companies, the rest to streets
RURAL_CATEGORIES = {"农村道路", "农村供水", "农村环境"}
# Problem categories: (share dispatched to departments, located) where not the default.
PROBLEM_CATEGORY_DISPATCH: dict[str, tuple[float, bool]] = {
    "房产证办理": (0.45, True),
    "不动产登记": (0.50, True),
    "社保缴纳": (0.60, False),
    "预付卡退费": (0.35, True),
    "培训退费": (0.40, True),
    "公交线路": (0.85, True),
    "义务教育入学": (0.40, True),
    "医疗服务": (0.60, False),
    "挂号就医": (0.70, False),
    "网购纠纷": (0.70, False),
    "供暖不热": (0.55, True),
    "农村道路": (0.10, True),
    "农村供水": (0.15, True),
    "农村环境": (0.05, True),
}

# Complaint texts per category; "{n}" takes a number from the (low, high) range.
T = tuple[str, int, int]
CATEGORY_TEXT: dict[str, list[T]] = {
    "噪声扰民": [
        ("楼下商户夜间音响声音过大，影响休息", 0, 0),
        ("楼上住户长期深夜发出噪音，多次沟通无果", 0, 0),
        ("附近广场舞音响音量过大，持续到晚上{n}点", 21, 23),
    ],
    "道路维修": [
        ("路面出现坑洼，约{n}平方米，车辆通行颠簸", 2, 30),
        ("人行道地砖松动破损，老人容易绊倒", 0, 0),
        ("道路井盖下沉，夜间通行存在安全隐患", 0, 0),
    ],
    "违章停车": [
        ("门口车辆长期乱停，堵塞消防通道", 0, 0),
        ("路口有车辆违停，早高峰造成拥堵", 0, 0),
    ],
    "供水": [
        ("家中停水已超过{n}小时，未见通知", 6, 30),
        ("自来水水压低，高层住户无法正常用水", 0, 0),
        ("自来水发黄有异味，担心水质问题", 0, 0),
    ],
    "燃气": [
        ("楼道内闻到燃气味，担心泄漏", 0, 0),
        ("燃气表故障无法充值，已停气{n}天", 1, 5),
    ],
    "供电": [
        ("小区频繁停电，本周已停电{n}次", 2, 6),
        ("电压不稳，家用电器无法正常使用", 0, 0),
    ],
    "排水": [
        ("雨后路面积水严重，雨水篦子堵塞", 0, 0),
        ("楼前污水井返水，气味难闻", 0, 0),
    ],
    "路灯照明": [
        ("路段路灯不亮已有{n}天，夜间出行不便", 3, 30),
        ("小区外道路没有照明，存在安全隐患", 0, 0),
    ],
    "树木绿化": [
        ("树枝遮挡窗户和路灯，希望修剪", 0, 0),
        ("绿地被占用堆放杂物，绿化遭到破坏", 0, 0),
    ],
    "公共设施": [
        ("健身器材损坏无人维修", 0, 0),
        ("公交站座椅损坏，站牌字迹不清", 0, 0),
        ("公共厕所设施损坏，卫生状况差", 0, 0),
    ],
    "交通信号": [
        ("路口红绿灯故障，车辆行人通行混乱", 0, 0),
        ("人行横道绿灯时间过短，老人来不及通过", 0, 0),
    ],
    "出租车": [
        ("出租车司机拒载并绕路，多收费{n}元", 10, 80),
        ("出租车不打表议价，要求处理", 0, 0),
    ],
    "地铁": [
        ("地铁早高峰站内过于拥挤，希望增加班次", 0, 0),
        ("地铁站出入口电梯长期停运", 0, 0),
    ],
    "通信网络": [
        ("家中宽带频繁断网，报修{n}次未解决", 2, 6),
        ("小区手机信号差，通话经常中断", 0, 0),
    ],
    "户籍证件": [
        ("咨询办理居住证所需材料和办理时限", 0, 0),
        ("身份证补办进度缓慢，已等待{n}天", 15, 60),
    ],
    "市容环境": [
        ("街边有大量小广告乱贴乱画", 0, 0),
        ("路边堆放建筑垃圾，长时间无人清理", 0, 0),
    ],
    "宠物扰民": [
        ("邻居饲养大型犬未拴绳，吓到儿童", 0, 0),
        ("楼内犬只夜间吠叫，影响休息", 0, 0),
    ],
    "消防安全": [
        ("楼道堆放大量杂物，存在消防隐患", 0, 0),
        ("小区消防栓损坏，灭火器过期", 0, 0),
    ],
    "房屋漏水": [
        ("楼顶防水层破损，家中屋顶漏水", 0, 0),
        ("楼上住户管道漏水，导致天花板渗水", 0, 0),
    ],
    "咨询建议": [
        ("咨询相关政策的办理流程", 0, 0),
        ("建议在附近增设便民服务网点", 0, 0),
    ],
    "邮政快递": [
        ("快递丢失，快递公司推诿不予赔偿", 0, 0),
        ("快递员未经同意将包裹放在快递柜并收费", 0, 0),
    ],
    "房产证办理": [
        ("购房已{n}年仍未办下房产证", 3, 15),
        ("开发商以欠缴税费为由迟迟不办房产证", 0, 0),
    ],
    "不动产登记": [
        ("办理不动产登记时被要求补交材料，多次往返", 0, 0),
        ("咨询回迁房不动产登记办理进度", 0, 0),
    ],
    "老旧小区改造": [
        ("老旧小区外墙保温脱落，希望纳入改造计划", 0, 0),
        ("小区改造施工进度缓慢，已停工{n}天", 10, 60),
        ("小区改造后管线未恢复，影响生活", 0, 0),
    ],
    "住房租赁": [
        ("退租时房东无故扣押押金{n}元", 1000, 8000),
        ("租赁公司突然要求提前退租，不退剩余租金", 0, 0),
    ],
    "房屋中介": [
        ("中介收取服务费后未履行约定", 0, 0),
        ("中介发布虚假房源信息", 0, 0),
    ],
    "拖欠工资": [
        ("公司拖欠工资{n}个月，老板失联", 2, 6),
        ("离职后公司拒绝结算剩余工资{n}元", 3000, 30000),
    ],
    "农民工工资": [
        ("在工地务工，总包单位拖欠农民工工资{n}元", 5000, 80000),
        ("工程完工后施工队迟迟不发工资", 0, 0),
    ],
    "社保缴纳": [
        ("单位未按规定缴纳社保，要求补缴", 0, 0),
        ("社保转移接续办理困难，已等待{n}天", 20, 90),
    ],
    "预付卡退费": [
        ("健身房闭店跑路，预付卡余额{n}元无法退费", 1000, 20000),
        ("美容店更换经营者后拒绝退还充值余额", 0, 0),
        ("理发店办理的会员卡无法使用，要求退费", 0, 0),
    ],
    "培训退费": [
        ("培训机构拒绝退还剩余课时费{n}元", 2000, 30000),
        ("培训机构停课后无法联系，学费无人退还", 0, 0),
    ],
    "食品安全": [
        ("在餐馆就餐后出现腹泻，怀疑食物不洁", 0, 0),
        ("超市销售过期食品", 0, 0),
    ],
    "垃圾清运": [
        ("小区垃圾桶已满{n}天无人清运，气味难闻", 2, 5),
        ("垃圾分类驿站清运不及时，垃圾堆到路边", 0, 0),
    ],
    "占道经营": [
        ("商户占用人行道经营，行人无法通行", 0, 0),
        ("早市摊位占道，堵塞道路", 0, 0),
    ],
    "无照游商": [
        ("地铁口聚集大量无照游商，影响通行", 0, 0),
        ("夜间路边游商烧烤，油烟和噪音扰民", 0, 0),
    ],
    "违法建设": [
        ("邻居在楼顶私搭乱建，存在安全隐患", 0, 0),
        ("小区绿地内有人私建房屋约{n}平方米", 10, 200),
    ],
    "物业服务": [
        ("物业公司服务差，楼道长期无人打扫", 0, 0),
        ("物业擅自涨收物业费，每平方米上涨{n}角", 2, 9),
        ("物业对报修问题不予处理", 0, 0),
    ],
    "停车难": [
        ("小区周边停车位严重不足，每晚找车位超过{n}分钟", 20, 90),
        ("希望在附近增设公共停车场", 0, 0),
    ],
    "小区停车": [
        ("小区停车管理混乱，外来车辆随意停放", 0, 0),
        ("物业擅自提高小区停车费", 0, 0),
    ],
    "公交线路": [
        ("公交线路调整后出行不便，希望恢复原站点", 0, 0),
        ("公交车发车间隔过长，等车超过{n}分钟", 20, 60),
    ],
    "共享单车": [
        ("共享单车大量堆放在人行道，影响通行", 0, 0),
        ("地铁站口共享单车乱停乱放", 0, 0),
    ],
    "供暖不热": [
        ("家中室温只有{n}度，供暖不达标", 12, 17),
        ("暖气片不热，报修后无人上门", 0, 0),
    ],
    "加装电梯": [
        ("咨询老楼加装电梯的申请流程和补贴政策", 0, 0),
        ("加装电梯工程停滞，已有{n}个月", 2, 10),
    ],
    "电动车充电": [
        ("小区没有电动自行车充电桩，居民飞线充电", 0, 0),
        ("希望在小区增设电动自行车集中充电设施", 0, 0),
    ],
    "义务教育入学": [
        ("孩子入学被分配到离家{n}公里外的学校", 3, 15),
        ("咨询非京籍子女入学材料审核进度", 0, 0),
    ],
    "幼儿入园": [
        ("附近没有普惠性幼儿园，孩子入园困难", 0, 0),
        ("小区配套幼儿园迟迟未开园", 0, 0),
    ],
    "农村道路": [
        ("村内道路破损严重，雨天泥泞难行", 0, 0),
        ("进村道路狭窄，没有路灯", 0, 0),
    ],
    "农村供水": [
        ("村里自来水经常停水，水质浑浊", 0, 0),
        ("村内供水管线老化，漏水严重", 0, 0),
    ],
    "农村环境": [
        ("村边垃圾堆积无人清理", 0, 0),
        ("村内污水直排沟渠，气味难闻", 0, 0),
    ],
    "施工噪声": [
        ("附近工地夜间施工至凌晨{n}点，噪音扰民", 1, 4),
        ("工地渣土车夜间作业噪音大", 0, 0),
    ],
    "餐饮油烟": [
        ("楼下餐馆油烟直排，窗户无法打开", 0, 0),
        ("饭店排烟管道紧邻住户窗户，油烟扰民", 0, 0),
    ],
    "医疗服务": [
        ("医院检查排队时间过长，预约需等待{n}天", 7, 40),
        ("医院收费项目不清，怀疑重复收费", 0, 0),
    ],
    "挂号就医": [
        ("医院专家号难挂，网上放号即被抢空", 0, 0),
        ("医院门口有号贩子倒卖号源", 0, 0),
    ],
    "养老服务": [
        ("养老驿站不提供助餐服务，老人吃饭困难", 0, 0),
        ("咨询居家养老服务补贴申请流程", 0, 0),
    ],
    "网购纠纷": [
        ("网购商品质量有问题，商家拒绝退货", 0, 0),
        ("网上购物付款{n}元后商家不发货", 100, 5000),
    ],
}
LEAD_INS = ["来电人反映：", "市民反映，", "来电人称，", "市民来电反映：", "网友留言反映，"]
ENDINGS = [
    "希望尽快处理。",
    "请相关部门核实处理。",
    "要求给予答复。",
    "希望相关部门尽快解决。",
    "已多次反映未果，请督促解决。",
]
# A handful of deliberately awkward texts: the mailer and the renderer must escape them.
HTML_SAMPLES = [
    "网页上出现<script>alert(1)</script>字样的链接，怀疑是诈骗网站，",
    "物业费计算公式有误：a < b & c，要求物业公示明细，",
    "<b>紧急</b>：楼道堆物堵塞消防通道 & 无人处理，",
    '缴费页面显示"退费<成功>"但未到账，金额>1000元，',
    "小区广告二维码带有<img src=x onerror=alert(2)>标签，",
    "两次缴费 5 < 8 & 8 > 5，单引号' 双引号\" 反斜杠\\ 都要显示正常，",
]

COMMUNITY_WORDS = _words(
    "和平 幸福 光明 阳光 团结 育新 长春 安华 花园 新华 建设 胜利 兴华 东湖 南湖 北湖 太阳 "
    "惠新 安苑 樱花园 青年湖 柳芳 化工 体育馆 景泰 翠林 玉蜓 石榴园 洋桥 角门 嘉园 康泽园 "
    "清欣园 果园 枣园 杏园 梨园 桃园 丽景 龙湖 怡然 康居 和顺 丰和 宏福 佳和 瑞祥 锦绣 书香 "
    "翰林 紫薇 玉兰 海棠 银杏 松林 竹园 荷花 月季 丁香 春晖 秋实 冬青 东里 西里 南里 北里 "
    "中里 新村 富强 民主 文明 和谐 友谊 向阳 朝晖 晨光 启明 金泉 银河 星河 彩虹 百合 芳草 "
    "青塔 绿洲 碧水 云景 天鹅湾 望园 悦秀 华龙 双桥 广华 西坝河 甜水园 远洋 首开 金隅"
)
VILLAGE_SURNAMES = _words("王 李 张 刘 陈 杨 赵 黄 周 吴 孙 马 郭 高 何 胡 韩 冯 曹 董")
VILLAGE_SUFFIXES = _words("庄 家庄 各庄 营 屯 店 辛庄 家务 家坞 峪 沟 台")
ROAD_STEMS = _words(
    "光华 建国 朝阳 安定 和平 新源 工体 团结 幸福 劲松 广渠 西大望 百子湾 左家庄 望京 阜通 "
    "广顺 酒仙桥 将台 北苑 安立 慧忠 育慧 学院 知春 成府 万泉河 科技园 看丹 槐房 角门 洋桥 "
    "马家堡 八角 鲁谷 长安 滨河 府前 新华 通惠 玉带河 九棵树 云景 翠屏 怡乐 站前 南环 北环 "
    "东环 西环 鼓楼 城关 兴华 林校 康庄 妫水 金顶 石门 龙城 兴业 振兴 富康 双营 丰收 "
    "永安 长青 拱辰 良乡 阳光 顺平 府学 宝塔 松园 果园 清源 黄村 旧宫 采育"
)
ROAD_SUFFIXES = ["路", "街", "大街", "北路", "南路", "东路", "西路"]
HUTONG_STEMS = _words("东四 史家 南锣 帽儿 菊儿 前鼓楼苑 大石作 西四北 砖塔 杨梅竹斜 百花深处 钱市")

MOBILE_PREFIXES = _words(
    "130 131 132 133 134 135 136 137 138 139 150 151 152 153 155 156 157 158 159 166 170 "
    "173 175 176 177 178 180 181 182 183 184 185 186 187 188 189 191 193 195 198 199 147"
)
ID_AREAS = ["110101", "110102", "110105", "110106", "110108", "110111", "130102", "370102"]

HOURLY_WEIGHTS = np.array(
    [0.6, 0.4, 0.3, 0.25, 0.25, 0.4, 1.0, 2.2, 4.0, 5.5, 6.0, 5.8,
     4.8, 4.6, 5.4, 5.6, 5.3, 4.9, 4.2, 3.9, 3.6, 3.0, 2.0, 1.1]
)  # fmt: skip
URGENCY_WEIGHTS = {1: 0.05, 2: 0.20, 3: 0.60, 4: 0.15}
WEEKEND_FACTOR = 0.6  # a non-working day's volume against a working day's
DAY = 86_400

STREAM_UNITS, STREAM_PROBLEMS, STREAM_PLAN, STREAM_TRENDS, STREAM_DAY = 1, 2, 3, 4, 100


def _rng(spec: DemoSpec, *stream: int) -> np.random.Generator:
    """A generator for one purpose: the same (seed, stream) always gives the same draws."""
    return np.random.default_rng([spec.seed, *stream])


# ---------------------------------------------------------------- units


@dataclass
class _City:
    units: list[dict[str, Any]]
    district_names: list[str]
    street_codes: np.ndarray  # (S,) object
    street_names: np.ndarray  # (S,) object
    street_district: np.ndarray  # (S,) int: index into district_names
    street_weight: np.ndarray  # (S,) float, sums to 1
    street_rural: np.ndarray  # (S,) bool: townships (镇/乡)
    communities: np.ndarray  # (S, K) object
    villages: np.ndarray  # (S, K) bool: the community is a village (村)
    roads: np.ndarray  # (S, R) object
    dept_codes: list[str]
    dept_names: dict[str, str]
    badness: np.ndarray  # (S + D,) float, mean 1: how badly each street/department handles


COMMUNITIES_PER_STREET = 10
ROADS_PER_STREET = 6


def _build_city(spec: DemoSpec) -> _City:
    rng = _rng(spec, STREAM_UNITS)
    email = spec.mail_domain
    units: list[dict[str, Any]] = [
        {"code": "city", "name": CITY_NAME, "kind": "city", "emails": [f"city@{email}"]}
    ]
    codes, names, district_of, weights, rural = [], [], [], [], []
    seen_names: set[str] = set()
    for d, (dname, population, _core, streets) in enumerate(DISTRICTS):
        dcode = f"d{d + 1:02d}"
        units.append(
            {
                "code": dcode,
                "name": dname,
                "kind": "district",
                "parent": "city",
                "emails": [f"{dcode}@{email}"],
            }
        )
        for s, sname in enumerate(streets):
            if sname in seen_names:
                raise AssertionError(f"duplicate street name {sname}")
            seen_names.add(sname)
            scode = f"{dcode}-s{s + 1:03d}"
            units.append(
                {
                    "code": scode,
                    "name": sname,
                    "kind": "street",
                    "parent": dcode,
                    "emails": [f"{scode}@{email}"],
                }
            )
            township = sname.endswith(("镇", "乡"))
            codes.append(scode)
            names.append(sname)
            district_of.append(d)
            rural.append(township)
            weights.append(population / len(streets) * (0.7 if township else 1.3))
    for code, name, kind in DEPARTMENTS:
        units.append(
            {
                "code": code,
                "name": name,
                "kind": kind,
                "parent": "city",
                "emails": [f"{code}@{email}"],
            }
        )

    n_streets = len(codes)
    weight = np.array(weights) * rng.lognormal(0.0, 0.45, n_streets)
    weight /= weight.sum()

    words = np.array(COMMUNITY_WORDS, dtype=object)
    villages_all = np.array(
        [s + x + "村" for s in VILLAGE_SURNAMES for x in VILLAGE_SUFFIXES], dtype=object
    )
    communities = np.empty((n_streets, COMMUNITIES_PER_STREET), dtype=object)
    is_village = np.zeros((n_streets, COMMUNITIES_PER_STREET), dtype=bool)
    roads = np.empty((n_streets, ROADS_PER_STREET), dtype=object)
    for s in range(n_streets):
        picked = rng.choice(words, COMMUNITIES_PER_STREET, replace=False)
        communities[s] = [w + "社区" for w in picked]
        if rural[s]:
            half = COMMUNITIES_PER_STREET // 2
            communities[s, half:] = rng.choice(villages_all, COMMUNITIES_PER_STREET - half, False)
            is_village[s, half:] = True
        core = DISTRICTS[district_of[s]][2]
        stems = rng.choice(np.array(ROAD_STEMS, dtype=object), ROADS_PER_STREET, replace=False)
        suffixes = rng.choice(np.array(ROAD_SUFFIXES, dtype=object), ROADS_PER_STREET)
        roads[s] = [a + b for a, b in zip(stems, suffixes, strict=True)]
        if core:
            hutongs = rng.choice(np.array(HUTONG_STEMS, dtype=object), 2, replace=False)
            roads[s, :2] = [h + "胡同" for h in hutongs]

    dept_codes = [c for c, _, _ in DEPARTMENTS]
    badness = rng.lognormal(0.0, 0.45, n_streets + len(dept_codes))
    badness /= badness.mean()
    return _City(
        units=units,
        district_names=[d[0] for d in DISTRICTS],
        street_codes=np.array(codes, dtype=object),
        street_names=np.array(names, dtype=object),
        street_district=np.array(district_of),
        street_weight=weight,
        street_rural=np.array(rural),
        communities=communities,
        villages=is_village,
        roads=roads,
        dept_codes=dept_codes,
        dept_names={c: n for c, n, _ in DEPARTMENTS},
        badness=badness,
    )


# ---------------------------------------------------------------- problems


def _cooperating(spec: DemoSpec) -> dict[str, list[str]]:
    """Each problem's cooperating units: the curated lists topped up to 54 distinct units."""
    coop = {p.code: list(p.cooperating) for p in PROBLEMS}
    union = {c for p in PROBLEMS for c in p.cooperating}
    rng = _rng(spec, STREAM_PROBLEMS)
    order = rng.permutation(len(PROBLEMS))
    reserve = [c for c in COOPERATING_RESERVE if c not in union]
    i = 0
    while len(union) < COOPERATING_TOTAL:
        unit = reserve.pop(0)
        problem = PROBLEMS[int(order[i % len(PROBLEMS)])]
        i += 1
        if unit == problem.lead:
            reserve.append(unit)
            continue
        coop[problem.code].append(unit)
        union.add(unit)
    if len(union) != COOPERATING_TOTAL:
        raise AssertionError(f"{len(union)} cooperating units, expected {COOPERATING_TOTAL}")
    return coop


def _plan_text(p: _ProblemDef, lead_name: str, n_coop: int) -> str:
    return (
        f"以{APPROACH_CN[p.approach]}为抓手解决{p.name}：{p.measures[0]}；{p.measures[1]}。"
        f"由{lead_name}牵头，{n_coop}家配合单位按月报送进展。"
    )


def _problems_yaml(spec: DemoSpec, city: _City, coop: dict[str, list[str]]) -> dict[str, Any]:
    problems = []
    for p in PROBLEMS:
        problems.append(
            {
                "code": p.code,
                "name": p.name,
                "category": p.category,
                "approach": p.approach,
                "lead": p.lead,
                "cooperating": coop[p.code],
                "ticket_categories": [c for c, _ in p.ticket_categories],
                "focus_month": p.focus_month,
                "plan": _plan_text(p, city.dept_names[p.lead], len(coop[p.code])),
            }
        )
    return {"year": spec.year, "problems": problems}


# ---------------------------------------------------------------- plan: tasks, duties, policies

PLAN_TASK_TOTAL = 603  # Beijing 2021
POLICY_TOTAL = 65

TASKS_FIRST = [
    "制定{name}专项工作方案，明确任务分工",
    "开展{obj}底数摸排，建立问题台账",
    "召开{name}工作部署会",
]
TASKS_MIDDLE = [
    "推进第{k}批{obj}问题整改",
    "对{obj}开展第{k}轮集中检查",
    "梳理{name}相关12345诉求，开展第{k}次分析研判",
    "协调解决{obj}中的疑难问题（第{k}批）",
    "组织{name}第{k}次联合督导",
    "完善{topic}配套措施（第{k}项）",
    "开展{name}典型案例宣传（第{k}期）",
]
TASKS_LAST = [
    "对已完成整改的{obj}开展回头看",
    "总结{name}工作成效，形成长效机制",
]
POLICY_TITLES = [
    "关于进一步加强{topic}工作的实施意见",
    "{topic}管理办法",
    "{topic}工作指引（试行）",
    "关于推进{topic}的若干措施",
    "{topic}专项治理工作方案",
]
EVIDENCE = [
    "工作台账及现场照片",
    "《{title}》完成情况报告",
    "会议纪要及签到表",
    "整改前后对比照片",
    "相关文件印发稿",
]
DUTIES = {
    "psb": "依法打击{name}中涉嫌违法犯罪的行为",
    "traffic-police": "负责{name}涉及的道路交通秩序管理和违停查处",
    "samr": "负责{name}涉及的市场主体监管和执法检查",
    "market-enforcement": "负责{name}涉及的市场监管执法办案",
    "finance": "负责{name}相关资金保障和绩效评价",
    "ndrc": "负责{name}相关价格政策和项目立项支持",
    "planning": "负责{name}涉及的规划审批和用地手续",
    "housing": "负责{name}涉及的住房和建设领域监管",
    "urban": "负责{name}涉及的市政市容管理",
    "urban-enforcement": "负责{name}涉及的街面执法和违法行为查处",
    "justice": "负责{name}相关法律援助和人民调解",
    "financial-regulation": "负责{name}涉及的资金监管和风险提示",
    "tax": "负责{name}涉及的税费征缴和办理",
    "transport": "负责{name}涉及的交通设施规划和运营管理",
    "health": "负责{name}涉及的医疗卫生服务保障",
    "civil": "负责{name}涉及的基层治理和社会组织管理",
    "ecology": "负责{name}涉及的生态环境监测和执法",
}


def _month(year: int, ordinal: int) -> date:
    """The first day of month `ordinal` (1 = January of `year`; may run past December)."""
    y, m = divmod(ordinal - 1, 12)
    return date(year + y, m + 1, 1)


def _month_end(year: int, ordinal: int) -> date:
    return _month(year, ordinal + 1) - timedelta(days=1)


def _random_day(rng: np.random.Generator, first: date, last: date) -> date:
    if last <= first:
        return first
    return first + timedelta(days=int(rng.integers(0, (last - first).days + 1)))


def _counts(rng: np.random.Generator, n: int, total: int, spread: int) -> list[int]:
    """`n` counts near total/n with +-spread, adjusted to sum exactly to `total`."""
    base = total // n
    counts = [int(x) for x in base + rng.integers(-spread, spread + 1, n)]
    i = 0
    while sum(counts) != total:
        step = 1 if sum(counts) < total else -1
        counts[i % n] += step
        i += 1
    return counts


def _build_plan(
    spec: DemoSpec, city: _City, coop: dict[str, list[str]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    rng = _rng(spec, STREAM_PLAN)
    today = spec.start + timedelta(days=spec.days)
    year = spec.year
    now_month = (today.year - year) * 12 + today.month  # ordinal of today's month in `year`
    yesterday = today - timedelta(days=1)
    dept_index = {c: i for i, c in enumerate(city.dept_codes)}
    n_streets = len(city.street_codes)

    def lag_chance(owner: str) -> float:
        bad = float(city.badness[n_streets + dept_index[owner]])
        return float(np.clip(0.10 * bad, 0.03, 0.4))

    tasks: list[dict[str, Any]] = []
    policies: list[dict[str, Any]] = []
    duties: list[dict[str, Any]] = []
    plans: list[dict[str, Any]] = []
    task_counts = _counts(rng, len(PROBLEMS), PLAN_TASK_TOTAL, 4)
    policy_counts = _counts(rng, len(PROBLEMS), POLICY_TOTAL, 0)
    for p, n_tasks, n_policies in zip(PROBLEMS, task_counts, policy_counts, strict=True):
        lead_name = city.dept_names[p.lead]
        fill = {"name": p.name, "obj": p.obj, "topic": p.topic}
        plans.append({"problem": p.code, "plan": _plan_text(p, lead_name, len(coop[p.code]))})
        n_middle = n_tasks - len(TASKS_FIRST) - len(TASKS_LAST)
        titles = [t.format(**fill) for t in TASKS_FIRST]
        titles += [
            TASKS_MIDDLE[i % len(TASKS_MIDDLE)].format(k=i // len(TASKS_MIDDLE) + 1, **fill)
            for i in range(n_middle)
        ]
        titles += [t.format(**fill) for t in TASKS_LAST]
        for i, title in enumerate(titles):
            due = 1 + (i * 12) // n_tasks
            start = max(1, due - int(rng.integers(0, 3)))
            middle = len(TASKS_FIRST) <= i < n_tasks - len(TASKS_LAST)
            owner = p.lead
            if middle and coop[p.code] and rng.random() < 0.6:
                owner = coop[p.code][int(rng.integers(0, len(coop[p.code])))]
            status, progress, done_on = _progress(
                rng, start, due, now_month, year, today, yesterday, lag_chance(owner)
            )
            evidence = ""
            if status == "done":
                evidence = EVIDENCE[int(rng.integers(0, len(EVIDENCE)))].format(title=title)
            elif status == "in_progress" and rng.random() < 0.3:
                evidence = "阶段性进展报告"
            tasks.append(
                {
                    "problem": p.code,
                    "code": f"{p.code}-T{i + 1:02d}",
                    "title": title,
                    "owner": owner,
                    "start_month": f"{_month(year, start):%Y-%m}",
                    "due_month": f"{_month(year, due):%Y-%m}",
                    "status": status,
                    "progress": progress,
                    "completed_on": f"{done_on:%Y-%m-%d}" if done_on else "",
                    "evidence": evidence,
                }
            )
        for j, unit in enumerate(coop[p.code]):
            duty = DUTIES.get(unit)
            if duty is None and unit in dept_index and _kind(unit) == "company":
                duty = "负责本企业服务范围内{name}相关诉求的办理和设施维护"
            duty = duty or "配合{lead}做好{name}相关工作，按月报送进展情况"
            duties.append(
                {
                    "problem": p.code,
                    "code": f"{p.code}-R{j + 1:02d}",
                    "unit": unit,
                    "duty": duty.format(name=p.name, lead=lead_name),
                }
            )
        for j, t in enumerate(rng.permutation(len(POLICY_TITLES))[:n_policies]):
            owner = p.lead
            if coop[p.code] and rng.random() < 0.2:
                owner = coop[p.code][int(rng.integers(0, len(coop[p.code])))]
            due = int(rng.integers(3, 13))
            status, _, issued = _progress(
                rng, max(1, due - 3), due, now_month, year, today, yesterday, lag_chance(owner)
            )
            number = int(rng.integers(1, 60))
            policies.append(
                {
                    "problem": p.code,
                    "code": f"{p.code}-Z{j + 1:02d}",
                    "title": POLICY_TITLES[int(t)].format(topic=p.topic),
                    "owner": owner,
                    "due_month": f"{_month(year, due):%Y-%m}",
                    "status": status,
                    "issued_on": f"{issued:%Y-%m-%d}" if issued else "",
                    "evidence": f"{city.dept_names[owner]}〔{year}〕{number}号" if issued else "",
                }
            )
    return tasks, duties, policies, plans


def _kind(code: str) -> str:
    for c, _, kind in DEPARTMENTS:
        if c == code:
            return kind
    return "department"


def _progress(
    rng: np.random.Generator,
    start: int,
    due: int,
    now_month: int,
    year: int,
    today: date,
    yesterday: date,
    lag: float,
) -> tuple[str, float, date | None]:
    """Status, progress and completion day of an item as of `today`."""
    first_day = _month(year, start)
    if first_day > yesterday:  # not started yet
        return "planned", 0.0, None
    if due < now_month:  # past its due month: mostly done, some lagging
        if rng.random() < lag:
            if rng.random() < 0.15:
                return "planned", 0.0, None
            return "in_progress", round(float(rng.uniform(0.3, 0.9)), 2), None
        last = _month_end(year, due)
        if rng.random() < 0.1:  # done, but late
            last = yesterday
        return "done", 1.0, _random_day(rng, first_day, min(last, yesterday))
    if due == now_month:
        if today.day > 1 and rng.random() < 0.4:
            return "done", 1.0, _random_day(rng, max(first_day, _month(year, due)), yesterday)
        return "in_progress", round(float(rng.uniform(0.4, 0.9)), 2), None
    # due later: in progress, a few done early
    if rng.random() < 0.05:
        return "done", 1.0, _random_day(rng, first_day, yesterday)
    elapsed = (now_month - start + 0.5) / (due - start + 1)
    return "in_progress", round(float(np.clip(elapsed * rng.uniform(0.6, 1.2), 0.05, 0.9)), 2), None


# ---------------------------------------------------------------- the working-day calendar


def _working_days(first: date, last: date, base_config_dir: Path) -> np.ndarray:
    """Day numbers (days since 1970-01-01) of the working days in [first, last].

    China's official calendar (chinese-calendar) where it knows the year, else Monday to
    Friday; then the overrides of the base config's calendar.yaml, like Duban's own calendar.
    """
    holidays: set[date] = set()
    workdays: set[date] = set()
    config_years: set[int] = set()
    path = base_config_dir / "calendar.yaml"
    if path.exists():
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        holidays = {_as_date(d) for d in data.get("holidays") or []}
        workdays = {_as_date(d) for d in data.get("workdays") or []}
        config_years = {int(y) for y in data.get("years") or []}
    try:
        import chinese_calendar
    except ImportError:  # pragma: no cover - a declared dependency
        chinese_calendar = None
    out = []
    day = first
    while day <= last:
        working = day.weekday() < 5
        if chinese_calendar is not None and day.year not in config_years:
            with contextlib.suppress(NotImplementedError):  # a year it does not know
                working = bool(chinese_calendar.is_workday(day))
        if day in holidays:
            working = False
        if day in workdays:
            working = True
        if working:
            out.append((day - date(1970, 1, 1)).days)
        day += timedelta(days=1)
    return np.array(out, dtype=np.int64)


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


# ---------------------------------------------------------------- tickets


@dataclass
class _TicketModel:
    categories: list[str]
    share: np.ndarray  # (C,) base share of all tickets
    monthly_rate: np.ndarray  # (C,) change of daily volume per month
    p_dept: np.ndarray  # (C,)
    located: np.ndarray  # (C,) bool
    rural: np.ndarray  # (C,) bool
    dept_choice: np.ndarray  # (C, K) int index into departments
    dept_cumw: np.ndarray  # (C, K) cumulative weights
    text_pre: np.ndarray  # (C, M) object
    text_post: np.ndarray  # (C, M) object
    text_lo: np.ndarray  # (C, M) int; 0 = no number
    text_hi: np.ndarray  # (C, M) int
    text_count: np.ndarray  # (C,) int
    response_hours: dict[int, float]
    working_days: dict[int, int]


def _ticket_model(
    spec: DemoSpec, city: _City, coop: dict[str, list[str]], urgency: dict[str, Any]
) -> _TicketModel:
    rng = _rng(spec, STREAM_TRENDS)
    dept_index = {c: i for i, c in enumerate(city.dept_codes)}
    cats: list[str] = []
    share: list[float] = []
    rate: list[float] = []
    p_dept: list[float] = []
    located: list[bool] = []
    depts: list[list[str]] = []

    general_total = sum(w for _, w, _, _, _ in GENERAL_CATEGORIES)
    general_rates = rng.uniform(-0.02, 0.03, len(GENERAL_CATEGORIES))
    for (name, weight, to_dept, listed, loc), r in zip(
        GENERAL_CATEGORIES, general_rates, strict=True
    ):
        cats.append(name)
        share.append(GENERAL_SHARE * weight / general_total)
        rate.append(float(r))
        p_dept.append(to_dept)
        located.append(loc)
        depts.append(listed.split())

    # Month-on-month change of each problem's tickets, as in the domain's May 2021 bulletin:
    # 7 fall by more than 10 %, 8 more by 3-10 %, 6 stay about flat, 6 rise.
    order = rng.permutation(len(PROBLEMS))
    problem_rate = np.empty(len(PROBLEMS))
    bands = [(7, -0.15, -0.11), (8, -0.09, -0.04), (6, 0.0, 0.03), (6, 0.04, 0.10)]
    i = 0
    for count, low, high in bands:
        for idx in order[i : i + count]:
            problem_rate[idx] = rng.uniform(low, high)
        i += count
    problem_total = sum(p.weight for p in PROBLEMS)
    for p, r in zip(PROBLEMS, problem_rate, strict=True):
        for name, part in p.ticket_categories:
            cats.append(name)
            share.append((1 - GENERAL_SHARE) * p.weight / problem_total * part)
            rate.append(float(r))
            pd_, loc = PROBLEM_CATEGORY_DISPATCH.get(name, (0.25, True))
            p_dept.append(pd_)
            located.append(loc)
            depts.append([p.lead, *coop[p.code]])

    share_a = np.array(share)
    p_dept_a = np.array(p_dept)
    # Scale so that DEPARTMENT_SHARE of all tickets go to departments and companies.
    p_dept_a = np.clip(p_dept_a * DEPARTMENT_SHARE / float(share_a @ p_dept_a), 0.0, 0.97)

    width = max(len(d) for d in depts)
    choice = np.zeros((len(cats), width), dtype=np.int64)
    cumw = np.ones((len(cats), width))
    for c, units in enumerate(depts):
        pull = 1.0 / np.arange(1, len(units) + 1)  # the first listed unit takes the most
        pull[0] *= 2
        choice[c, : len(units)] = [dept_index[u] for u in units]
        cumw[c, : len(units)] = np.cumsum(pull) / pull.sum()
    cumw[:, -1] = 1.0

    m = max(len(CATEGORY_TEXT[c]) for c in cats)
    pre = np.full((len(cats), m), "", dtype=object)
    post = np.full((len(cats), m), "", dtype=object)
    lo = np.zeros((len(cats), m), dtype=np.int64)
    hi = np.zeros((len(cats), m), dtype=np.int64)
    n_texts = np.zeros(len(cats), dtype=np.int64)
    for c, name in enumerate(cats):
        texts = CATEGORY_TEXT[name]
        n_texts[c] = len(texts)
        for j, (text, low, high) in enumerate(texts):
            before, _, after = text.partition("{n}")
            pre[c, j], post[c, j] = before, after
            if "{n}" in text:
                lo[c, j], hi[c, j] = low, high

    return _TicketModel(
        categories=cats,
        share=share_a / share_a.sum(),
        monthly_rate=np.array(rate),
        p_dept=p_dept_a,
        located=np.array(located),
        rural=np.array([c in RURAL_CATEGORIES for c in cats]),
        dept_choice=choice,
        dept_cumw=cumw,
        text_pre=pre,
        text_post=post,
        text_lo=lo,
        text_hi=hi,
        text_count=n_texts,
        response_hours={
            int(lv["level"]): float(lv.get("response_hours", 24)) for lv in urgency["levels"]
        },
        working_days={int(lv["level"]): int(lv["working_days"]) for lv in urgency["levels"]},
    )


def _times(seconds: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Times as 'YYYY-MM-DD HH:MM:SS' where valid, '' elsewhere."""
    text = np.datetime_as_string(np.where(valid, seconds, 0).astype("datetime64[s]"), unit="s")
    text = np.char.replace(text, "T", " ").astype(object)
    text[~valid] = ""
    return text


def _digits(rng: np.random.Generator, n: int, width: int) -> np.ndarray:
    return np.char.zfill(rng.integers(0, 10**width, n).astype(str), width).astype(object)


def _id_number(rng: np.random.Generator) -> str:
    """A made-up 18-digit resident ID number with a valid check digit."""
    area = ID_AREAS[int(rng.integers(0, len(ID_AREAS)))]
    birth = date(1950, 1, 1) + timedelta(days=int(rng.integers(0, 365 * 50)))
    body = f"{area}{birth:%Y%m%d}{int(rng.integers(0, 1000)):03d}"
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    total = sum(int(ch) * w for ch, w in zip(body, weights, strict=True))
    return body + "10X98765432"[total % 11]


def _pick(cumw: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Index of the bucket each uniform draw falls in, row by row of cumulative weights."""
    return np.minimum((u[:, None] > cumw).sum(axis=1), cumw.shape[1] - 1)


def _day_tickets(
    spec: DemoSpec,
    city: _City,
    model: _TicketModel,
    day_index: int,
    n: int,
    p_category: np.ndarray,
    workdays: np.ndarray,
    id_width: int,
) -> pd.DataFrame:
    """The tickets received on day `day_index` of the period, as strings per ticket field."""
    rng = _rng(spec, STREAM_DAY, day_index)
    day = spec.start + timedelta(days=day_index)
    day_no = (day - date(1970, 1, 1)).days
    now = ((spec.start - date(1970, 1, 1)).days + spec.days) * DAY  # the demo's "today"
    n_streets = len(city.street_codes)

    # Received: by the hour profile of the hotline, in time order.
    hours = rng.choice(24, n, p=HOURLY_WEIGHTS / HOURLY_WEIGHTS.sum())
    tod = np.sort(hours * 3600 + rng.integers(0, 3600, n))
    received = day_no * DAY + tod

    cat = rng.choice(len(model.categories), n, p=p_category)
    street_any = rng.choice(n_streets, n, p=city.street_weight)
    rural_w = city.street_weight * city.street_rural
    street_rural = rng.choice(n_streets, n, p=rural_w / rural_w.sum())
    street = np.where(model.rural[cat], street_rural, street_any)
    to_dept = rng.random(n) < model.p_dept[cat]
    dept = model.dept_choice[cat, _pick(model.dept_cumw[cat], rng.random(n))]
    unit_idx = np.where(to_dept, n_streets + dept, street)
    bad = city.badness[unit_idx]

    levels = np.array(list(URGENCY_WEIGHTS))
    weights = np.array(list(URGENCY_WEIGHTS.values()))
    urgency = rng.choice(levels, n, p=weights / weights.sum())

    # Dispatch a few minutes after receipt; a reassigned ticket takes longer.
    reassigned = np.select([rng.random(n) < 0.005, rng.random(n) < 0.035], [2, 1], 0)
    dispatch_delay = np.clip(rng.lognormal(np.log(360), 0.6, n), 60, 3600).astype(np.int64)
    dispatch_delay += reassigned * rng.integers(600, 7200, n)
    dispatched = received + dispatch_delay

    # First response: within the level's response hours for ~90 % (worse for bad units).
    resp_limit = np.array([model.response_hours[int(u)] for u in levels])[urgency - 1] * 3600
    resp_late = rng.random(n) < np.clip(0.10 * bad, 0.01, 0.5)
    resp_frac = np.where(resp_late, rng.uniform(1.05, 2.5, n), rng.uniform(0.03, 0.9, n))
    first_response = dispatched + (resp_frac * resp_limit).astype(np.int64)

    # Closure on the working-day calendar: on time for ~85 %, some late, a few stuck.
    limit = np.array([model.working_days[int(u)] for u in levels])[urgency - 1]
    late = rng.random(n) < np.clip(0.15 * bad, 0.02, 0.6)
    k = np.where(
        late,
        limit + rng.geometric(0.35, n),
        np.floor(rng.random(n) * (limit + 1)).astype(np.int64),
    )
    k = np.where((k == 0) & (tod >= 15 * 3600), 1, k)
    position = np.searchsorted(workdays, day_no, side="right")  # first working day after
    close_day = np.where(k == 0, day_no, workdays[np.minimum(position + k - 1, len(workdays) - 1)])
    morning, evening = int(8.5 * 3600), int(18.5 * 3600)
    close_tod = np.where(
        k == 0,
        tod + rng.integers(3600, 5 * 3600, n),
        morning + (rng.random(n) * (evening - morning)).astype(np.int64),
    )
    closed = close_day * DAY + close_tod
    closed = np.maximum(closed, dispatched + 3600)
    first_response = np.where(
        first_response >= closed,
        dispatched + ((closed - dispatched) * rng.uniform(0.2, 0.8, n)).astype(np.int64),
        first_response,
    )
    stuck = rng.random(n) < np.clip(0.008 * bad, 0.0, 0.05)
    is_closed = ~stuck & (closed < now)

    resolved = is_closed & (rng.random(n) < np.clip(1 - 0.2 * bad, 0.3, 0.98))
    resolved_at = first_response + ((closed - first_response) * rng.uniform(0.7, 1.0, n)).astype(
        np.int64
    )

    surveyed = is_closed & (rng.random(n) < 0.88) & (closed < now - DAY)
    p_diss = np.where(resolved, np.clip(0.05 * bad, 0.005, 0.5), 0.45)
    p_basic = np.where(resolved, 0.17, 0.25)
    u = rng.random(n)
    satisfaction = np.where(
        u < p_diss,
        "dissatisfied",
        np.where(u < p_diss + p_basic, "basically_satisfied", "satisfied"),
    ).astype(object)
    satisfaction[~surveyed] = ""
    returned = np.select(
        [rng.random(n) < np.clip(0.01 * bad, 0, 0.1), rng.random(n) < np.clip(0.05 * bad, 0, 0.3)],
        [2, 1],
        0,
    )

    has_dispatch = dispatched < now
    has_response = first_response < now
    status = np.where(is_closed, "closed", np.where(has_response, "in_progress", "open"))

    # Where the citizen lives.
    district = np.array(city.district_names, dtype=object)[city.street_district[street]]
    street_name = city.street_names[street]
    slot = rng.integers(0, COMMUNITIES_PER_STREET, n)
    community = city.communities[street, slot]
    village = city.villages[street, slot]
    road = city.roads[street, rng.integers(0, ROADS_PER_STREET, n)]
    # Complaints cluster: skewing the uniform draws towards the first numbers and buildings
    # makes a few compounds on each road the usual suspects, so that repeat complaints and
    # look-back recurrences happen at the same address (the draws themselves are unchanged).
    number_draw = rng.integers(1, 200, n)
    building_draw = rng.integers(1, 21, n)
    number = (1 + (number_draw - 1) ** 4 // 199**3).astype(str).astype(object)
    building = (1 + (building_draw - 1) ** 2 // 20).astype(str).astype(object)
    address = np.where(
        village,
        community + number + "号",
        np.where(
            rng.random(n) < 0.2, road + number + "号", road + number + "号院" + building + "号楼"
        ),
    )

    # What the citizen said.
    template = np.floor(rng.random(n) * model.text_count[cat]).astype(np.int64)
    low, high = model.text_lo[cat, template], model.text_hi[cat, template]
    value = (low + np.floor(rng.random(n) * (high - low + 1))).astype(np.int64)
    value_text = np.where(high > 0, value.astype(str).astype(object), "")
    place = district + street_name + np.where(village, "", community) + address
    where = np.where(model.located[cat], place, "")
    content = (
        np.array(LEAD_INS, dtype=object)[rng.integers(0, len(LEAD_INS), n)]
        + where
        + model.text_pre[cat, template]
        + value_text
        + model.text_post[cat, template]
        + "，"
        + np.array(ENDINGS, dtype=object)[rng.integers(0, len(ENDINGS), n)]
    )
    personal = np.flatnonzero(rng.random(n) < 0.002)
    for i in personal.tolist():
        if rng.random() < 0.5:
            phone = MOBILE_PREFIXES[int(rng.integers(0, len(MOBILE_PREFIXES)))]
            phone += f"{int(rng.integers(0, 10**8)):08d}"
            content[i] += f"来电人留电话{phone}，请回电。"
        else:
            content[i] += f"来电人身份证号{_id_number(rng)}。"
    if day_index < len(HTML_SAMPLES) and n > 0:
        at = min(17, n - 1)
        content[at] = LEAD_INS[0] + where[at] + HTML_SAMPLES[day_index] + ENDINGS[1]

    # Who called: mobiles mostly, some Beijing landlines, a few anonymous.
    kind = rng.random(n)
    mobile = np.array(MOBILE_PREFIXES, dtype=object)[
        rng.integers(0, len(MOBILE_PREFIXES), n)
    ] + _digits(rng, n, 8)
    landline = "010-" + rng.choice(np.array(list("5678"), dtype=object), n) + _digits(rng, n, 7)
    phone_text = np.where(kind < 0.85, mobile, np.where(kind < 0.98, landline, ""))

    unit_codes = np.concatenate([city.street_codes, np.array(city.dept_codes, dtype=object)])
    ids = f"{day:%Y%m%d}" + np.char.zfill(np.arange(1, n + 1).astype(str), id_width).astype(object)
    empty = np.full(n, "", dtype=object)
    return pd.DataFrame(
        {
            "external_id": ids,
            "received_at": _times(received, np.ones(n, dtype=bool)),
            "dispatched_at": _times(dispatched, has_dispatch),
            "first_response_at": _times(first_response, has_response),
            "resolved_at": _times(resolved_at, resolved),
            "closed_at": _times(closed, is_closed),
            "due_at": empty,
            "category": np.array(model.categories, dtype=object)[cat],
            "district": district,
            "street": street_name,
            "community": community,
            "address": address,
            "content": content,
            "caller_phone": phone_text,
            "unit": unit_codes[unit_idx],
            "urgency": urgency.astype(str).astype(object),
            "status": status.astype(object),
            "resolved": np.where(is_closed, np.where(resolved, "1", "0"), "").astype(object),
            "satisfaction": satisfaction,
            "returned_count": np.where(is_closed | has_response, returned, 0).astype(str),
            "reassigned_count": reassigned.astype(str),
        },
        dtype=object,
    )


def _daily_counts(
    spec: DemoSpec, model: _TicketModel, workdays: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Tickets per day (Poisson around the calibrated mean) and category probabilities."""
    start_no = (spec.start - date(1970, 1, 1)).days
    day_nos = start_no + np.arange(spec.days)
    working = np.isin(day_nos, workdays)
    day_weight = np.where(working, 1.0, WEEKEND_FACTOR)
    # Within each month, working days take more than other days; but every month has the
    # same mean daily volume before the trends, so that month-on-month changes of a problem
    # show its trend and not the number of holidays in the month.
    month = (day_nos.astype("datetime64[D]").astype("datetime64[M]")).astype(np.int64)
    for m in np.unique(month):
        in_month = month == m
        day_weight[in_month] /= day_weight[in_month].mean()
    months = np.arange(spec.days) / 30.4375
    trend = (1 + model.monthly_rate)[None, :] ** months[:, None]  # (days, C)
    per_category = model.share[None, :] * trend
    expected = day_weight * per_category.sum(axis=1)
    expected *= spec.daily_volume * spec.days / expected.sum()
    p_category = per_category / per_category.sum(axis=1, keepdims=True)
    counts = np.array([_rng(spec, STREAM_DAY, d, 0).poisson(expected[d]) for d in range(spec.days)])
    return counts, p_category


# ---------------------------------------------------------------- writing it all


def _dump_yaml(path: Path, data: Any, header: str) -> None:
    text = yaml.safe_dump(
        data, allow_unicode=True, sort_keys=False, default_flow_style=None, width=100
    )
    path.write_text(header + text, encoding="utf-8")


def _copy_config(base_config_dir: Path, config_dir: Path, mail_domain: str) -> None:
    (config_dir / "sources").mkdir(parents=True, exist_ok=True)
    for path in sorted(base_config_dir.glob("*.yaml")):
        if path.name not in ("units.yaml", "problems.yaml"):
            shutil.copyfile(path, config_dir / path.name)
    for path in sorted((base_config_dir / "sources").glob("*.yaml")):
        shutil.copyfile(path, config_dir / "sources" / path.name)
    # The demo's units receive mail at `mail_domain`: let the mail guard allow it.
    mail = config_dir / "mail.yaml"
    if mail.exists():
        data = yaml.safe_load(mail.read_text(encoding="utf-8")) or {}
        allowed = list(data.get("allowed_domains") or [])
        if mail_domain not in allowed:
            data["allowed_domains"] = [*allowed, mail_domain]
            _dump_yaml(mail, data, "# The base config's mail.yaml; the demo's domain allowed.\n")


def _columns(config_dir: Path) -> dict[str, str]:
    """Ticket field -> export column of the canonical mapping (sources/duban.yaml)."""
    from duban.config import TICKET_FIELDS

    path = config_dir / "sources" / "duban.yaml"
    if path.exists():
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if data.get("columns"):
            return {str(k): str(v) for k, v in data["columns"].items()}
    return {f: f for f in TICKET_FIELDS}


def generate_city(spec: DemoSpec, out_dir: Path, base_config_dir: Path) -> DemoFiles:
    """Write the demo city's config, plan workbook and ticket export into `out_dir`."""
    from duban.ingest.plan import write_plan_workbook

    if spec.days < 1 or spec.daily_volume < 1:
        raise ValueError("days and daily_volume must be at least 1")
    out_dir = Path(out_dir)
    base_config_dir = Path(base_config_dir)
    config_dir = out_dir / "config"
    _copy_config(base_config_dir, config_dir, spec.mail_domain)

    city = _build_city(spec)
    coop = _cooperating(spec)
    comment = f"# Generated by duban.demo.city (seed {spec.seed}); rebuilt on each demo run.\n"
    _dump_yaml(config_dir / "units.yaml", {"units": city.units}, comment)
    _dump_yaml(config_dir / "problems.yaml", _problems_yaml(spec, city, coop), comment)

    tasks, duties, policies, plans = _build_plan(spec, city, coop)
    plan_path = out_dir / "plan.xlsx"
    write_plan_workbook(plan_path, tasks, duties, policies, plans)

    urgency = yaml.safe_load((config_dir / "urgency.yaml").read_text(encoding="utf-8"))
    model = _ticket_model(spec, city, coop, urgency)
    span_first = spec.start - timedelta(days=31)
    span_last = spec.start + timedelta(days=spec.days + 120)
    workdays = _working_days(span_first, span_last, base_config_dir)
    counts, p_category = _daily_counts(spec, model, workdays)
    id_width = max(5, len(str(int(counts.max(initial=0)))))
    columns = _columns(config_dir)

    tickets_path = out_dir / "tickets.csv"
    total = 0
    with tickets_path.open("w", encoding="utf-8-sig", newline="") as handle:
        header = pd.DataFrame(columns=list(columns.values()))
        header.to_csv(handle, index=False, lineterminator="\n")
        for d in range(spec.days):
            frame = _day_tickets(
                spec, city, model, d, int(counts[d]), p_category[d], workdays, id_width
            )
            frame = frame[list(columns)].set_axis(list(columns.values()), axis=1)
            frame.to_csv(handle, mode="a", header=False, index=False, lineterminator="\n")
            total += len(frame)

    return DemoFiles(
        config_dir=config_dir,
        plan_workbook=plan_path,
        tickets_csv=tickets_path,
        units=len(city.units),
        problems=len(PROBLEMS),
        plan_tasks=len(tasks),
        policies=len(policies),
        tickets=total,
    )
