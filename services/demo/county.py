"""The demo county at the case's scale: pure data, a function of the seed alone.

Longxi County's seat, the towns of Gongchang (巩昌镇) and Wenfeng (文峰镇), as the People's Daily
case describes it: 18 residential communities (11 in 巩昌镇 around the old town, 7 in 文峰镇 to
its east; the case's model communities are 巩昌镇南城, 西城 and 文峰镇交通, 东铺), 68 party-mass service stations and 19 party-member posts, 493 level-4
grids (and level-5 grids by building or courtyard), about 100 employing units, and 2,280
in-service members who reported to the community where they live. Nothing here does I/O or
reads the clock, so the same seed gives the same county byte for byte (`fingerprint`), which is
what lets a simulator's truth file and a loaded service be reconciled.
"""

from __future__ import annotations

import csv
import hashlib
import io
import random
from dataclasses import asdict, dataclass, replace
from datetime import date, timedelta
from typing import Any, Literal

DEFAULT_SEED = 20221

# The case's figures (MISSION.md); the unit tests check them exactly.
N_COMMUNITIES = 18
N_SERVICE_STATIONS = 68
N_MEMBER_POSTS = 19
N_GRIDS_L4 = 493
N_MEMBERS = 2280
# Level-5 grids go by building or courtyard. The case counts 3,000+; the demo keeps one to
# three per level-4 grid in the bigger communities, enough to exercise the hierarchy without
# making `make run` load thousands of rows one POST at a time.
N_GRIDS_L5 = 620
# Standing posts (岗位认领) on the level-5 grids, the case's figures: 484 unit party-member posts
# (单元党员责任岗) and 140 building party groups (楼栋党小组); most are claimed.
N_UNIT_POSTS = 484
N_BUILDING_GROUPS = 140
POSTS_CLAIMED = 0.85

UnitKind = Literal["organ", "institution", "enterprise"]
StationKind = Literal["service_station", "member_post"]


@dataclass(frozen=True)
class DemoUnit:
    key: str
    name: str
    kind: UnitKind


@dataclass(frozen=True)
class DemoTown:
    key: str
    name: str


@dataclass(frozen=True)
class DemoCommunity:
    key: str
    name: str
    households: int
    # 7 of the 18 were newly set up when the town was re-drawn (the case: "7 new, 8 re-drawn").
    is_new: bool
    town_key: str = ""


@dataclass(frozen=True)
class DemoGrid:
    key: str
    community_key: str
    name: str
    level: Literal[4, 5]
    parent_key: str | None  # the level-4 grid of a level-5 grid


@dataclass(frozen=True)
class DemoStation:
    key: str
    community_key: str
    name: str
    kind: StationKind
    # Around 陇西县城 (巩昌镇, 文峰镇), for the travel-speed anomaly flag (services.anomalies).
    lat: float | None = None
    lon: float | None = None


# The county seat, and how far from it a community lies (km); a station lies near its
# community's centre. From a hash of the keys, not the seed's generator, so every other value
# of the county stays what it was before stations had coordinates.
LONGXI_CENTRE = (35.0030, 104.6340)
_COMMUNITY_SPREAD_KM = 4.0
_STATION_SPREAD_KM = 0.6


def _offset(key: str, spread_km: float) -> tuple[float, float]:
    h = hashlib.sha256(key.encode()).digest()
    dx = (h[0] / 255 - 0.5) * 2 * spread_km
    dy = (h[1] / 255 - 0.5) * 2 * spread_km
    # A degree of latitude is ~111 km; of longitude ~91 km at 35° N.
    return dy / 111.0, dx / 91.0


def station_place(community_key: str, station_key: str) -> tuple[float, float]:
    c_lat, c_lon = _offset(community_key, _COMMUNITY_SPREAD_KM)
    s_lat, s_lon = _offset(station_key, _STATION_SPREAD_KM)
    return (
        round(LONGXI_CENTRE[0] + c_lat + s_lat, 5),
        round(LONGXI_CENTRE[1] + c_lon + s_lon, 5),
    )


@dataclass(frozen=True)
class DemoMember:
    key: str
    name: str
    phone: str
    unit_key: str
    community_key: str
    grid_key: str  # a level-4 grid inside community_key
    party_branch: str
    reported_on: date


@dataclass(frozen=True)
class DemoPost:
    key: str
    community_key: str
    grid_key: str  # a level-5 grid of community_key
    kind: Literal["unit_post", "building_group"]
    title: str
    holder_key: str | None  # a member of the community, or None: still open


@dataclass(frozen=True)
class County:
    seed: int
    units: tuple[DemoUnit, ...]
    communities: tuple[DemoCommunity, ...]
    grids: tuple[DemoGrid, ...]
    stations: tuple[DemoStation, ...]
    members: tuple[DemoMember, ...]
    posts: tuple[DemoPost, ...] = ()
    towns: tuple[DemoTown, ...] = ()

    def unit(self, key: str) -> DemoUnit:
        return next(u for u in self.units if u.key == key)

    def community(self, key: str) -> DemoCommunity:
        return next(c for c in self.communities if c.key == key)

    def grid(self, key: str) -> DemoGrid:
        return next(g for g in self.grids if g.key == key)

    def fingerprint(self) -> str:
        """A digest of every field: equal digests mean byte-for-byte equal counties."""
        h = hashlib.sha256()
        parts: tuple[tuple[Any, ...], ...] = (
            self.units,
            self.communities,
            self.grids,
            self.stations,
            self.members,
            self.posts,
            self.towns,
        )
        for part in parts:
            for item in part:
                h.update(repr(sorted(asdict(item).items())).encode())
        return h.hexdigest()


# The county seat's two towns, and how many of COMMUNITY_NAMES (in order) lie in each.
TOWNS = (("t1", "巩昌镇", 11), ("t2", "文峰镇", 7))
# Neighbourhood names of the county seat; the first seven are the "new" communities.
COMMUNITY_NAMES = (
    "城关社区",
    "东关社区",
    "西关社区",
    "南关社区",
    "北关社区",
    "崇文社区",
    "仁寿社区",
    "南城社区",
    "西城社区",
    "福星社区",
    "长安社区",
    "和平社区",
    "永吉社区",
    "交通社区",
    "东铺社区",
    "汇丰社区",
    "新城社区",
    "育才社区",
)

# Street and place names for stations, posts and courtyards.
PLACES = (
    "新华路",
    "西大街",
    "东大街",
    "南大街",
    "北大街",
    "文化路",
    "建设路",
    "仁寿山",
    "威远楼",
    "李家龙宫",
    "渭河",
    "科峰",
    "马河",
    "康家崖",
    "中街",
    "城隍庙",
    "体育场",
    "火车站",
    "菜市场",
    "人民广场",
    "北滨河路",
    "南滨河路",
    "陇西大道",
    "巩昌路",
    "金盛路",
    "玉泉路",
    "福星路",
    "崇文路",
    "保昌楼",
    "长安路",
)

COURTYARDS = (
    "号楼",
    "家属院",
    "小区",
    "巷",
)

ORGANS = (
    "县委办公室",
    "县人大常委会办公室",
    "县政府办公室",
    "县政协办公室",
    "县纪委监委",
    "县委组织部",
    "县委宣传部",
    "县委统战部",
    "县委政法委",
    "县委编办",
    "县委党校",
    "县委巡察办",
    "县委网信办",
    "县发展和改革局",
    "县教育局",
    "县科学技术局",
    "县工业和信息化局",
    "县公安局",
    "县民政局",
    "县司法局",
    "县财政局",
    "县人力资源和社会保障局",
    "县自然资源局",
    "县住房和城乡建设局",
    "县交通运输局",
    "县水务局",
    "县农业农村局",
    "县商务局",
    "县文化和旅游局",
    "县卫生健康局",
    "县退役军人事务局",
    "县应急管理局",
    "县审计局",
    "县市场监督管理局",
    "县统计局",
    "县医疗保障局",
    "县林业和草原局",
    "县乡村振兴局",
    "县信访局",
    "县机关事务服务中心",
    "县融媒体中心",
    "县总工会",
    "团县委",
    "县妇联",
    "县科协",
    "县工商联",
    "县人民法院",
    "县人民检察院",
    "县税务局",
    "县生态环境局",
    "县城市管理执法局",
    "县中药材产业发展局",
    "县档案馆",
    "县气象局",
    "县消防救援大队",
)

INSTITUTIONS = (
    "县人民医院",
    "县中医院",
    "县妇幼保健院",
    "县疾病预防控制中心",
    "县第二人民医院",
    "陇西一中",
    "陇西二中",
    "陇西三中",
    "县职业中等专业学校",
    "巩昌中学",
    "文峰中学",
    "县城关小学",
    "县东关小学",
    "县西关小学",
    "县南关小学",
    "县北关小学",
    "县崇文小学",
    "县第一幼儿园",
    "县第二幼儿园",
    "县实验幼儿园",
    "县图书馆",
    "县博物馆",
    "县文化馆",
    "县公共资源交易中心",
    "县政务服务中心",
    "县社会保险服务中心",
    "县住房公积金管理部",
    "县不动产登记中心",
    "县农业技术推广中心",
    "县畜牧兽医站",
)

ENTERPRISES = (
    "县供电公司",
    "县自来水公司",
    "县燃气公司",
    "县城市投资发展集团",
    "县交通建设投资公司",
    "县农村信用合作联社",
    "县邮政分公司",
    "县移动分公司",
    "县电信分公司",
    "县联通分公司",
    "县烟草专卖局（分公司）",
    "县供销合作社联合社",
    "县粮食储备公司",
    "县公共交通公司",
    "县中药材交易中心有限公司",
)

# The most common Chinese surnames with weights roughly in proportion to their frequency
# nationally, with the Gansu favourites (王, 李, 张, 刘, 陈, 杨) near the top.
SURNAMES = (
    ("王", 72),
    ("李", 71),
    ("张", 67),
    ("刘", 54),
    ("陈", 46),
    ("杨", 42),
    ("赵", 20),
    ("黄", 18),
    ("周", 17),
    ("吴", 16),
    ("徐", 12),
    ("孙", 12),
    ("马", 12),
    ("胡", 10),
    ("朱", 10),
    ("郭", 10),
    ("何", 9),
    ("罗", 8),
    ("高", 8),
    ("林", 7),
    ("董", 6),
    ("汪", 6),
    ("魏", 6),
    ("牛", 5),
    ("令狐", 1),
    ("漆", 3),
    ("包", 3),
    ("石", 4),
    ("苟", 3),
    ("雷", 3),
    ("安", 3),
    ("邓", 4),
    ("任", 4),
    ("蒲", 2),
    ("景", 2),
    ("贾", 4),
    ("田", 4),
    ("韩", 5),
    ("冯", 5),
    ("曹", 4),
)

GIVEN_CHARS = (
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰红梅丹辉建国文斌海燕宁鹏飞亮"
    "晨浩宇欣怡婷雪琳晶慧颖博彬凯俊峰欢鑫佳瑞龙蕾瑶倩雯春霖昊天玲萍娅璐坤鹤"
)

MOBILE_PREFIXES = (
    "130",
    "131",
    "132",
    "133",
    "135",
    "136",
    "137",
    "138",
    "139",
    "150",
    "151",
    "152",
    "153",
    "155",
    "157",
    "158",
    "159",
    "166",
    "173",
    "177",
    "180",
    "181",
    "182",
    "183",
    "186",
    "187",
    "188",
    "189",
    "191",
    "193",
    "199",
)

# When members reported to their community: the program started in 2021's second half and the
# bulk reported in 2022; later years bring new hires and transfers.
REPORT_YEARS = ((2021, 5), (2022, 55), (2023, 15), (2024, 10), (2025, 9), (2026, 6))
LAST_REPORT_DAY = date(2026, 10, 31)


def _split(total: int, weights: list[int]) -> list[int]:
    """`total` split in proportion to `weights` (largest remainder), summing exactly to total."""
    s = sum(weights)
    raw = [total * w / s for w in weights]
    out = [int(r) for r in raw]
    order = sorted(range(len(weights)), key=lambda i: (-(raw[i] - out[i]), i))
    for i in order[: total - sum(out)]:
        out[i] += 1
    return out


def _units() -> tuple[DemoUnit, ...]:
    kinds: list[tuple[tuple[str, ...], UnitKind]] = [
        (ORGANS, "organ"),
        (INSTITUTIONS, "institution"),
        (ENTERPRISES, "enterprise"),
    ]
    out: list[DemoUnit] = []
    for names, kind in kinds:
        for name in names:
            out.append(DemoUnit(key=f"u{len(out) + 1:03d}", name=name, kind=kind))
    return tuple(out)


def _unit_weight(u: DemoUnit) -> int:
    # Hospitals and big schools employ many more members than a small office.
    if "医院" in u.name or u.name.startswith("陇西"):
        return 9
    if u.kind == "institution":
        return 3
    if u.name in ("县公安局", "县教育局", "县供电公司", "县农村信用合作联社"):
        return 6
    return 2


def _branches(unit: DemoUnit, members: int) -> list[str]:
    # A party branch has at most about 50 members; bigger units split into numbered branches.
    n = max(1, (members + 49) // 50)
    if n == 1:
        return [f"{unit.name}党支部"]
    digits = "一二三四五六七八九十"
    return [f"{unit.name}第{digits[i]}党支部" for i in range(n)]


def _name(rng: random.Random) -> str:
    surnames = [s for s, _ in SURNAMES]
    weights = [w for _, w in SURNAMES]
    surname = rng.choices(surnames, weights)[0]
    given_len = 1 if rng.random() < 0.3 else 2
    return surname + "".join(rng.choice(GIVEN_CHARS) for _ in range(given_len))


def _phone(rng: random.Random, used: set[str]) -> str:
    while True:
        p = rng.choice(MOBILE_PREFIXES) + f"{rng.randrange(10**8):08d}"
        if p not in used:
            used.add(p)
            return p


def _reported_on(rng: random.Random) -> date:
    year = rng.choices([y for y, _ in REPORT_YEARS], [w for _, w in REPORT_YEARS])[0]
    start = date(year, 7, 1) if year == 2021 else date(year, 1, 1)
    end = min(date(year, 12, 31), LAST_REPORT_DAY)
    return start + timedelta(days=rng.randrange((end - start).days + 1))


def _town_of(i: int) -> str:
    """The town of the i-th community: TOWNS take COMMUNITY_NAMES in order."""
    for key, _, n in TOWNS:
        if i < n:
            return key
        i -= n
    raise ValueError("more communities than TOWNS place")


def generate(seed: int = DEFAULT_SEED) -> County:
    """The county for this seed. Only `random.Random(seed)` and lists are used: deterministic."""
    rng = random.Random(seed)

    units = _units()

    households = [rng.randrange(900, 3001) for _ in range(N_COMMUNITIES)]
    communities = tuple(
        DemoCommunity(
            key=f"c{i + 1:02d}",
            name=COMMUNITY_NAMES[i],
            households=households[i],
            is_new=i < 7,
            town_key=_town_of(i),
        )
        for i in range(N_COMMUNITIES)
    )

    # Level-4 grids: about one per 50 households, exactly 493 in all.
    grids: list[DemoGrid] = []
    l4_by_comm: dict[str, list[DemoGrid]] = {}
    for c, n in zip(communities, _split(N_GRIDS_L4, households), strict=True):
        for j in range(n):
            g = DemoGrid(
                key=f"{c.key}g{j + 1:02d}",
                community_key=c.key,
                name=f"第{j + 1}网格",
                level=4,
                parent_key=None,
            )
            grids.append(g)
            l4_by_comm.setdefault(c.key, []).append(g)
    # Level-5 grids by building or courtyard under a chosen subset of level-4 grids.
    l4_all = list(grids)
    l5_left = N_GRIDS_L5
    l5_counts: dict[str, int] = {}
    while l5_left:
        parent = rng.choice(l4_all)
        if l5_counts.get(parent.key, 0) < 3:
            l5_counts[parent.key] = l5_counts.get(parent.key, 0) + 1
            l5_left -= 1
    for parent in l4_all:
        place = rng.choice(PLACES)
        for k in range(l5_counts.get(parent.key, 0)):
            suffix = COURTYARDS[(k + len(parent.key)) % len(COURTYARDS)]
            label = f"{k + 1}{suffix}" if suffix == "号楼" else f"{place}{k + 1}{suffix}"
            grids.append(
                DemoGrid(
                    key=f"{parent.key}b{k + 1}",
                    community_key=parent.community_key,
                    name=f"{parent.name}{label}",
                    level=5,
                    parent_key=parent.key,
                )
            )

    # Stations: at least three service stations per community, the rest by size; posts spread.
    stations: list[DemoStation] = []
    extra = _split(N_SERVICE_STATIONS - 3 * N_COMMUNITIES, households)
    posts = _split(N_MEMBER_POSTS, [1] * N_COMMUNITIES)
    for c, more, n_posts in zip(communities, extra, posts, strict=True):
        places = rng.sample(PLACES, 3 + more + n_posts)
        short = c.name.removesuffix("社区")
        for j in range(3 + more):
            stations.append(
                DemoStation(
                    key=f"{c.key}s{j + 1}",
                    community_key=c.key,
                    name=f"{short}社区{places[j]}党群服务站",
                    kind="service_station",
                    lat=station_place(c.key, f"{c.key}s{j + 1}")[0],
                    lon=station_place(c.key, f"{c.key}s{j + 1}")[1],
                )
            )
        for j in range(n_posts):
            stations.append(
                DemoStation(
                    key=f"{c.key}p{j + 1}",
                    community_key=c.key,
                    name=f"{short}社区{places[3 + more + j]}党员驿站",
                    kind="member_post",
                    lat=station_place(c.key, f"{c.key}p{j + 1}")[0],
                    lon=station_place(c.key, f"{c.key}p{j + 1}")[1],
                )
            )

    # Members: units by size, communities by households, a level-4 grid in their community.
    unit_sizes = _split(N_MEMBERS, [_unit_weight(u) for u in units])
    unit_of: list[DemoUnit] = [u for u, n in zip(units, unit_sizes, strict=True) for _ in range(n)]
    rng.shuffle(unit_of)
    branches = {u.key: _branches(u, n) for u, n in zip(units, unit_sizes, strict=True)}
    branch_i: dict[str, int] = {}
    phones: set[str] = set()
    members: list[DemoMember] = []
    for i, unit in enumerate(unit_of):
        c = rng.choices(communities, households)[0]
        grid = rng.choice(l4_by_comm[c.key])
        bi = branch_i.get(unit.key, 0)
        branch_i[unit.key] = bi + 1
        unit_branches = branches[unit.key]
        members.append(
            DemoMember(
                key=f"m{i + 1:04d}",
                name=_name(rng),
                phone=_phone(rng, phones),
                unit_key=unit.key,
                community_key=c.key,
                grid_key=grid.key,
                # Members fill their unit's branches in turn, as a party office assigns them.
                party_branch=unit_branches[bi % len(unit_branches)],
                reported_on=_reported_on(rng),
            )
        )

    return County(
        seed=seed,
        units=units,
        communities=communities,
        grids=tuple(grids),
        stations=tuple(stations),
        members=tuple(members),
        posts=_posts(seed, grids, members),
        towns=tuple(DemoTown(k, n) for k, n, _ in TOWNS),
    )


def _posts(seed: int, grids: list[DemoGrid], members: list[DemoMember]) -> tuple[DemoPost, ...]:
    """The case's 140 building groups and 484 unit posts on the level-5 grids. A random of its
    own, so the rest of the county is what it was before posts existed."""
    rng = random.Random(seed * 7919 + 484)
    l5 = [g for g in grids if g.level == 5]
    # A building group per building for 140 of them; unit posts over all, a few per building.
    group_grids = rng.sample(l5, N_BUILDING_GROUPS)
    unit_grids = [l5[i % len(l5)] for i in range(N_UNIT_POSTS)]
    by_grid: dict[str, list[DemoMember]] = {}
    by_comm: dict[str, list[DemoMember]] = {}
    for m in members:
        by_grid.setdefault(m.grid_key, []).append(m)
        by_comm.setdefault(m.community_key, []).append(m)
    taken: set[str] = set()
    out: list[DemoPost] = []
    n_unit: dict[str, int] = {}
    for kind, chosen in (("building_group", group_grids), ("unit_post", unit_grids)):
        for g in chosen:
            if kind == "unit_post":
                n_unit[g.key] = n_unit.get(g.key, 0) + 1
                title = f"{g.name}{n_unit[g.key]}单元党员责任岗"
            else:
                title = f"{g.name}楼栋党小组"
            holder = None
            if rng.random() < POSTS_CLAIMED:
                # A member of the building's level-4 grid first, else of the community; one
                # post each.
                near = [m for m in by_grid.get(g.parent_key or "", []) if m.key not in taken]
                near = near or [m for m in by_comm.get(g.community_key, []) if m.key not in taken]
                if near:
                    holder = rng.choice(near).key
                    taken.add(holder)
            out.append(
                DemoPost(
                    key=f"{g.key}{'q' if kind == 'building_group' else 'u'}{len(out) + 1:03d}",
                    community_key=g.community_key,
                    grid_key=g.key,
                    kind=kind,  # type: ignore[arg-type]
                    title=title,
                    holder_key=holder,
                )
            )
    return tuple(out)


# The import template's headers, in order (issue 3): name, mobile, unit, community, grid, date.
IMPORT_HEADERS = ("姓名", "手机号码", "工作单位", "居住社区", "网格", "报到日期")


def members_csv(county: County, members: tuple[DemoMember, ...] | None = None) -> bytes:
    """The members as an HR office hands them over: UTF-8 CSV with BOM (what Excel writes)."""
    units = {u.key: u.name for u in county.units}
    comms = {c.key: c.name for c in county.communities}
    grids = {g.key: g.name for g in county.grids}
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(IMPORT_HEADERS)
    for m in county.members if members is None else members:
        w.writerow(
            (
                m.name,
                m.phone,
                units[m.unit_key],
                comms[m.community_key],
                grids[m.grid_key],
                m.reported_on.isoformat(),
            )
        )
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def slice_county(county: County, community_keys: tuple[str, ...], max_members: int) -> County:
    """A small, self-consistent part of the county (for tests and quick demos)."""
    keep = set(community_keys)
    members = tuple(m for m in county.members if m.community_key in keep)[:max_members]
    unit_keys = {m.unit_key for m in members}
    kept = {m.key for m in members}
    posts = tuple(
        p if p.holder_key in kept or p.holder_key is None else replace(p, holder_key=None)
        for p in county.posts
        if p.community_key in keep
    )
    return County(
        seed=county.seed,
        units=tuple(u for u in county.units if u.key in unit_keys),
        communities=tuple(c for c in county.communities if c.key in keep),
        grids=tuple(g for g in county.grids if g.community_key in keep),
        stations=tuple(s for s in county.stations if s.community_key in keep),
        members=members,
        posts=posts,
        towns=tuple(
            t
            for t in county.towns
            if any(c.town_key == t.key for c in county.communities if c.key in keep)
        ),
    )


# A unit's roster names every in-service member it employs: those who reported to a community
# and, in the demo, about one in twelve more who have not yet (未报到), so the unit's page shows
# both. Positions are optional on a roster; most lines leave them blank.
ROSTER_HEADERS = ("姓名", "手机号码", "党支部", "职务")
_POSITIONS = ("", "", "", "科员", "副科长", "科长")


def unit_rosters(county: County) -> dict[str, bytes]:
    """Each unit's roster as its HR office uploads it (UTF-8 CSV with BOM), by unit key."""
    rng = random.Random(f"{county.seed}:rosters")
    used = {m.phone for m in county.members}
    by_unit: dict[str, list[DemoMember]] = {}
    for m in county.members:
        by_unit.setdefault(m.unit_key, []).append(m)
    out: dict[str, bytes] = {}
    for u in county.units:
        members = by_unit.get(u.key, [])
        branches = sorted({m.party_branch for m in members}) or [f"{u.name}党支部"]
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\r\n")
        w.writerow(ROSTER_HEADERS)
        for m in members:
            w.writerow((m.name, m.phone, m.party_branch, rng.choice(_POSITIONS)))
        for _ in range(max(1, len(members) // 12)):
            w.writerow(
                (_name(rng), _phone(rng, used), rng.choice(branches), rng.choice(_POSITIONS))
            )
        out[u.key] = ("\ufeff" + buf.getvalue()).encode("utf-8")
    return out
