//! The two languages of the pages: Chinese (the default) and English.
//!
//! Every visible string is a [`Key`]; [`t`] looks it up. The table is one macro invocation in
//! which each key must carry both texts, so a key without a translation does not compile. The
//! Chinese terms are the ones DOMAIN.md gives (密级 绝密/机密/秘密, 涉密载体, 借出/归还, 未经授权带出,
//! 清点, 查无下落, 泄密, 审计, 门禁, 智能柜, 保管员, 保密员, 警卫, 审计员, 管理员), so users
//! read the words they already use.
//!
//! The language comes from the `lang` cookie (set by the switch links `/lang/zh`, `/lang/en`),
//! else from `Accept-Language`, else Chinese.

use axum::http::HeaderMap;
use axum::http::header::{ACCEPT_LANGUAGE, COOKIE};

use crate::domain::alert::{AlertKind, AlertState, Severity};
use crate::domain::approval::{RequestKind, RequestState};
use crate::domain::carrier::{CarrierKind, CarrierState};
use crate::domain::device::DeviceKind;
use crate::domain::level::{Level, ZoneLevel};
use crate::domain::person::{Category, PersonStatus};
use crate::domain::role::Role;
use crate::domain::signout::SignoutState;

/// The language cookie's name.
pub const LANG_COOKIE: &str = "lang";

/// A page language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    /// Simplified Chinese (the default).
    #[default]
    Zh,
    /// English.
    En,
}

impl Lang {
    /// Both languages, in switch order.
    pub const ALL: [Lang; 2] = [Lang::Zh, Lang::En];

    /// The short code used in the cookie and the switch links.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Zh => "zh",
            Lang::En => "en",
        }
    }

    /// The BCP 47 tag for `<html lang>`.
    pub fn html_tag(self) -> &'static str {
        match self {
            Lang::Zh => "zh-CN",
            Lang::En => "en",
        }
    }

    /// The language's own name, for the switch.
    pub fn own_name(self) -> &'static str {
        match self {
            Lang::Zh => "中文",
            Lang::En => "English",
        }
    }

    /// Parse a cookie or switch code.
    pub fn from_code(code: &str) -> Option<Lang> {
        match code {
            "zh" => Some(Lang::Zh),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// The request's language: cookie, then `Accept-Language`, then Chinese.
    pub fn of(headers: &HeaderMap) -> Lang {
        cookie(headers, LANG_COOKIE)
            .and_then(Lang::from_code)
            .or_else(|| {
                headers
                    .get(ACCEPT_LANGUAGE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(from_accept_language)
            })
            .unwrap_or_default()
    }
}

/// The value of cookie `name`, if sent.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, value)| *n == name && !value.is_empty())
        .map(|(_, value)| value)
}

/// The preferred of Chinese and English in an `Accept-Language` value: the highest `q`, the
/// earlier one on a tie; `None` if neither is acceptable.
fn from_accept_language(value: &str) -> Option<Lang> {
    let mut best: Option<(Lang, u32)> = None;
    for item in value.split(',') {
        let mut parts = item.split(';');
        let tag = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let lang = if tag == "zh" || tag.starts_with("zh-") {
            Lang::Zh
        } else if tag == "en" || tag.starts_with("en-") {
            Lang::En
        } else {
            continue;
        };
        let q = parts
            .find_map(|p| p.trim().strip_prefix("q="))
            .map_or(1000, quality);
        if q > 0 && best.is_none_or(|(_, b)| q > b) {
            best = Some((lang, q));
        }
    }
    best.map(|(lang, _)| lang)
}

/// A `q` value in thousandths (`0.8` → 800); malformed values count as 0.
fn quality(text: &str) -> u32 {
    let (int, frac) = text.trim().split_once('.').unwrap_or((text.trim(), ""));
    let whole = match int {
        "0" => 0,
        "1" => 1000,
        _ => return 0,
    };
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return 0;
    }
    let padded = format!("{frac:0<3}");
    (whole + padded.parse::<u32>().unwrap_or(0)).min(1000)
}

macro_rules! texts {
    ($($key:ident: $zh:literal, $en:literal;)+) => {
        /// A visible string. Each has a Chinese and an English text (see [`t`]).
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[allow(missing_docs)]
        pub enum Key {
            $($key,)+
        }

        impl Key {
            /// Every key (for the tests).
            pub const ALL: &'static [Key] = &[$(Key::$key),+];
        }

        /// The text of `key` in `lang`.
        pub fn t(lang: Lang, key: Key) -> &'static str {
            match key {
                $(Key::$key => match lang {
                    Lang::Zh => $zh,
                    Lang::En => $en,
                },)+
            }
        }
    };
}

texts! {
    // The frame.
    AppName: "Custos 涉密载体管理系统", "Custos classified carrier control";
    NavGuard: "警卫台", "Guard console";
    NavUsers: "用户与角色", "Users and roles";
    NavDevices: "设备", "Devices";
    NavZones: "区域", "Zones";
    NavAudit: "审计", "Audit trail";
    MainNav: "主导航", "Main navigation";
    SignedInAs: "当前用户", "Signed in as";
    Logout: "退出登录", "Sign out";
    Language: "语言", "Language";
    SkipToContent: "跳到正文", "Skip to content";

    // Sign-in.
    LoginTitle: "登录", "Sign in";
    Username: "用户名", "Username";
    Password: "密码", "Password";
    LoginButton: "登录", "Sign in";
    ErrInvalidCredentials: "用户名或密码错误。", "Invalid username or password.";
    ErrTooManyAttempts: "该用户名登录失败次数过多，请稍候再试。", "Too many failed sign-ins for this username; please wait a little and try again.";
    ErrFormExpired: "表单已过期或来源无效，请重新提交。", "The form has expired or did not come from this site; please submit it again.";

    // Error pages.
    ForbiddenTitle: "无权访问", "Access denied";
    ForbiddenBody: "您的角色无权访问此页面或执行此操作。", "Your roles do not allow this page or action.";
    NotFoundTitle: "页面不存在", "Page not found";
    InternalTitle: "系统错误", "Internal error";
    InternalBody: "请求未能完成，错误已记录。请稍后重试或联系管理员。", "The request could not be completed; the error has been logged. Try again later or contact the administrator.";
    TooLargeBody: "提交的内容过大。", "The submitted form is too large.";
    BadFormBody: "提交的表单无法解析。", "The submitted form could not be read.";
    BackHome: "返回首页", "Back to the start page";

    // Home.
    HomeTitle: "首页", "Start";
    HomeNoPages: "您的角色暂无可用页面。", "No pages are available for your roles yet.";

    // Roles (监管分离).
    RoleAdmin: "管理员", "Administrator";
    RoleSecurityOfficer: "保密员", "Security officer";
    RoleCustodian: "保管员", "Custodian";
    RoleGuard: "警卫", "Guard";
    RoleAuditor: "审计员", "Auditor";

    // Levels (密级).
    Level: "密级", "Level";
    LevelTopSecret: "绝密", "Top Secret";
    LevelSecret: "机密", "Secret";
    LevelConfidential: "秘密", "Confidential";
    LevelPublic: "非涉密区域", "Public";

    // Device kinds.
    KindGate: "通道门", "Gate";
    KindCabinet: "智能柜", "Cabinet";
    KindDesk: "桌面读写器", "Desk reader";

    // Alert kinds.
    AlertUnauthorizedRemoval: "未经授权带出", "Unauthorized removal";
    AlertClearanceViolation: "密级不符带入", "Clearance violation";
    AlertCabinetRemoval: "智能柜异常取出", "Removed from cabinet";
    AlertWrongCabinet: "错柜归还", "Wrong cabinet";
    AlertOverdue: "借出逾期未归还", "Overdue";
    AlertMissing: "查无下落", "Missing";
    AlertLeakDeadline: "查无下落超期（按泄密处理）", "Leak deadline passed";
    AlertReaderSilent: "读写器失联", "Reader silent";
    AlertReaderFault: "读写器故障", "Reader fault";
    AlertDeviceAuthFailed: "设备认证失败", "Device authentication failed";
    AlertReplayRejected: "重放数据被拒绝", "Replay rejected";
    AlertUnknownTag: "未登记标签", "Unknown tag";
    AlertTagCloneSuspected: "疑似标签克隆", "Tag clone suspected";
    AlertNotificationFailed: "通知发送失败", "Notification failed";
    AlertDestroyedSeen: "已销毁载体被读到", "Destroyed carrier seen";
    AlertTrainingExpiredHolding: "培训或承诺过期仍持有载体", "Training or commitment expired while holding carriers";
    AlertCollectionDue: "年底收缴：持有人须交回载体", "Year-end collection: the holder must return carriers";
    AlertTrainingExpiring: "保密培训即将到期", "Training expiring";
    AlertCommitmentExpiring: "保密承诺即将到期", "Commitment expiring";
    AlertDecommissioningEnding: "脱密期即将结束", "Decommissioning period ending";

    // Alert states and severities.
    StateOpen: "未处理", "Open";
    StateAcknowledged: "已确认", "Acknowledged";
    StateResolved: "已处理", "Resolved";
    SeverityCritical: "紧急", "Critical";
    SeverityHigh: "高", "High";
    SeverityMedium: "中", "Medium";
    SeverityLow: "低", "Low";

    // Guard console.
    GuardTitle: "警卫台", "Guard console";
    LiveAlerts: "实时告警", "Live alerts";
    NoAlerts: "当前没有未处理的告警。", "No open alerts.";
    ReaderStatus: "读写器状态", "Reader status";
    GatePassages: "门禁通行记录", "Gate passages";
    NoPassages: "暂无通行记录。", "No passages yet.";
    NoDevices: "尚未登记设备。", "No devices registered.";
    Gate: "通道门", "Gate";
    Direction: "方向", "Direction";
    DirectionIn: "进入", "In";
    DirectionOut: "带出", "Out";
    Carrier: "涉密载体", "Carrier";
    CarrierControlNo: "载体编号", "Control number";
    BadgeHolder: "持卡人", "Badge holder";
    Badges: "工卡", "Badges";
    Time: "时间", "Time";
    Occurrences: "次数", "Occurrences";
    Acknowledge: "确认", "Acknowledge";
    Resolve: "处理完毕", "Resolve";
    ResolveNote: "处理说明", "Resolution note";
    NoteRequired: "请填写处理说明。", "A note is required.";
    ActionFailed: "操作失败：", "Action failed: ";
    SoundEnable: "启用警报声音", "Enable alarm sound";
    SoundOn: "警报声音已启用", "Alarm sound on";
    LiveConnected: "实时连接正常", "Live";
    LiveDisconnected: "实时连接中断，正在重连…", "Connection lost; reconnecting…";
    NoScript: "此页面需要启用 JavaScript 才能实时更新和处理告警。", "This page needs JavaScript for live updates and handling alerts.";
    UnauthorizedBanner: "警报：未经授权带出涉密载体！", "ALARM: classified carrier removed without authorization!";
    Device: "设备", "Device";
    LastHeartbeat: "最后心跳", "Last heartbeat";
    ReaderOk: "正常", "OK";
    ReaderSilent: "失联", "Silent";
    ReaderNever: "从未上报", "Never reported";
    ReaderFault: "故障", "Fault";
    ReaderDegraded: "降级", "Degraded";
    Never: "从未", "never";
    DeviceRevoked: "已吊销", "revoked";

    // Forms in general.
    FormHasErrors: "请更正以下错误。", "Please correct the errors below.";
    Create: "创建", "Create";
    Created: "已创建：", "Created: ";
    CreatedAt: "创建时间", "Created";
    NoneOption: "（无）", "(none)";
    Yes: "是", "yes";
    No: "否", "no";

    // Users.
    UsersTitle: "用户与角色", "Users and roles";
    CreateUser: "新建用户", "New user";
    Roles: "角色", "Roles";
    PersonId: "人员编号", "Person id";
    Optional: "（可选）", "(optional)";
    Disabled: "已停用", "Disabled";
    ExclusiveHint: "管理员、保密员、审计员三种角色互斥：一个账号最多只能担任其中一种（监管分离）。", "Administrator, security officer and auditor exclude one another: an account may hold at most one of them (separation of duties).";
    PasswordHint: "至少 12 个字符；不能包含用户名，不能是常见密码。", "At least 12 characters; not the username, not a common password.";
    ErrRolesExclusive: "角色冲突：管理员、保密员、审计员不能由同一账号兼任。", "Role conflict: administrator, security officer and auditor cannot be held by the same account.";
    ErrRolesEmpty: "请至少选择一个角色。", "Choose at least one role.";
    ErrUsername: "用户名须为 1–64 个字母、数字或 . _ - 字符。", "The username must be 1 to 64 characters of A–Z a–z 0–9 . _ -.";
    ErrUsernameTaken: "该用户名已存在。", "That username is already taken.";
    ErrPasswordShort: "密码至少需要 12 个字符。", "The password must have at least 12 characters.";
    ErrPasswordLong: "密码不能超过 1024 字节。", "The password must have at most 1024 bytes.";
    ErrPasswordOneChar: "密码不能由同一个字符重复组成。", "The password must not be one character repeated.";
    ErrPasswordUsername: "密码不能包含用户名。", "The password must not contain the username.";
    ErrPasswordCommon: "密码过于常见，请换一个。", "The password is too common; choose another.";
    ErrPersonId: "人员编号须为数字。", "The person id must be a number.";
    ErrPasswordMismatch: "两次输入的新密码不一致。", "The two new passwords differ.";
    ErrWrongPassword: "当前密码不正确。", "The current password is wrong.";
    ErrPasswordUnchanged: "新密码不能与当前密码相同。", "The new password must differ from the current one.";
    ChangePasswordTitle: "修改密码", "Change password";
    ChangePasswordButton: "修改密码", "Change password";
    PasswordChangeRequired: "请先设置您自己的密码：此账号的密码由管理员设定，修改之前不能进行任何操作。", "Set your own password first: an administrator chose this account's password, and nothing else can be done until you replace it.";
    CurrentPassword: "当前密码", "Current password";
    NewPassword: "新密码", "New password";
    ConfirmPassword: "再次输入新密码", "New password again";
    UserActions: "操作", "Actions";
    DisableUser: "停用", "Disable";
    EnableUser: "启用", "Enable";
    ResetPassword: "重置密码", "Reset password";
    TemporaryPassword: "临时密码", "Temporary password";
    Sessions: "会话", "Sessions";
    RevokeSessions: "注销全部会话", "End all sessions";
    MustChangePassword: "待改密码", "Must change password";
    AccountUpdated: "已更新账号：", "Account updated: ";
    ErrDisableSelf: "不能停用自己的账号。", "You cannot disable your own account.";
    ErrPersonDeparted: "该账号对应的人员已离职，账号保持停用。", "This account's person has departed; the account stays disabled.";
    SessionsTitle: "账号的会话", "Sessions of the account";
    NoSessions: "没有有效会话。", "No live sessions.";
    UserNotFound: "没有这个账号。", "No such account.";
    ExpiresAt: "到期时间", "Expires";
    ErrUnknownPerson: "人员登记中没有该编号。", "No person on the register has that id.";

    // Devices.
    DevicesTitle: "设备", "Devices";
    RegisterDevice: "登记设备", "Register a device";
    DeviceId: "设备编号", "Device id";
    DeviceKind: "类型", "Kind";
    PublicKey: "公钥", "Public key";
    PublicKeyHint: "custosd keygen 输出的 Ed25519 公钥（base64）。", "The Ed25519 public key printed by custosd keygen (base64).";
    InsideZone: "内侧区域（涉密区）", "Inside zone (secure side)";
    OutsideZone: "外侧区域", "Outside zone";
    Zone: "所在区域", "Zone";
    Register: "登记", "Register";
    ErrDeviceId: "设备编号须为 1–64 个字母、数字或 . _ - 字符。", "The device id must be 1 to 64 characters of A–Z a–z 0–9 . _ -.";
    ErrDeviceKind: "请选择设备类型。", "Choose the device kind.";
    ErrPublicKey: "公钥须为 32 字节的标准 base64 编码。", "The public key must be standard base64 of 32 bytes.";
    ErrGateNeedsBothSides: "通道门须同时指定内侧和外侧区域。", "A gate needs both an inside and an outside zone.";
    ErrGateSidesEqual: "通道门的内侧和外侧区域不能相同。", "A gate's inside and outside zones must differ.";
    ErrCabinetNeedsZone: "智能柜须指定所在区域。", "A cabinet needs a zone.";
    ErrNotApplicable: "此类型设备不使用该区域字段。", "This zone field does not apply to this kind of device.";
    ErrDeviceTaken: "设备编号或公钥已被登记。", "That device id or public key is already registered.";
    ErrUnknownZone: "区域不存在。", "No such zone.";

    // Zones.
    ZonesTitle: "区域", "Zones";
    CreateZone: "新建区域", "New zone";
    ZoneId: "区域编号", "Zone id";
    ZoneName: "名称", "Name";
    ErrZoneId: "区域编号须为 1–64 个字母、数字或 . _ - 字符。", "The zone id must be 1 to 64 characters of A–Z a–z 0–9 . _ -.";
    ErrZoneName: "名称须为 1–200 个可打印字符。", "The name must be 1 to 200 printable characters.";
    ErrLevel: "请选择密级。", "Choose a level.";
    ErrZoneTaken: "该区域编号已存在。", "That zone id already exists.";

    // Audit.
    AuditTitle: "审计", "Audit trail";
    Filter: "筛选", "Filter";
    ClearFilter: "清除", "Clear";
    Actor: "操作人", "Actor";
    Action: "操作", "Action";
    Subject: "对象", "Subject";
    DateFrom: "起始日期", "From";
    DateTo: "截止日期", "To";
    ErrDate: "日期格式须为 YYYY-MM-DD。", "Dates must be YYYY-MM-DD.";
    Entry: "序号", "Entry";
    Hash: "哈希", "Hash";
    PrevHash: "前一条哈希", "Previous hash";
    Details: "内容", "Details";
    Older: "更早的记录", "Older entries";
    Newest: "最新记录", "Newest entries";
    NoEntries: "没有匹配的审计记录。", "No matching entries.";
    ChainStatus: "审计链完整性", "Chain integrity";
    ChainIntact: "审计链完整，未发现篡改。", "The chain is intact: no tampering found.";
    ChainBroken: "审计链已被破坏！", "The chain is BROKEN!";
    EntriesChecked: "已校验条目", "Entries checked";
    SignedThrough: "已签名至条目", "Signed through entry";
    FirstBadEntry: "首个异常条目", "First bad entry";
    SignedHeads: "已签名的链头", "Signed chain heads";
    NoHeads: "尚无签名的链头。", "No signed heads yet.";
    Signature: "签名", "Signature";
    ServerKey: "服务器公钥（Ed25519，base64）", "Server public key (Ed25519, base64)";
    ProblemMissing: "条目缺失", "entry missing";
    ProblemBrokenLink: "前一哈希不衔接", "previous hash does not link";
    ProblemHashMismatch: "内容与哈希不符", "content does not match its hash";
    ProblemBadHeadSignature: "链头签名无效", "signed head has an invalid signature";
    ProblemHeadMismatch: "链头与审计链不符", "signed head does not match the chain";

    // Navigation of the custody pages.
    NavDesk: "扫码台", "Scan desk";
    NavCarriers: "载体登记", "Carriers";
    NavSignoutNew: "借出申请", "Sign-out request";
    NavCabinets: "智能柜清点", "Cabinet counts";
    NavApprovals: "借出审批", "Approvals";
    NavPeople: "涉密人员", "People";
    NavOverdue: "逾期未还", "Overdue";
    NavMissing: "查无下落", "Missing";
    NavAlertHistory: "告警记录", "Alert history";
    NavNotifications: "通知投递", "Notifications";

    // Shared custody words.
    AnyOption: "（全部）", "(any)";
    Search: "查询", "Search";
    Look: "查询", "Look up";
    Holder: "持有人", "Holder";
    HomeCabinet: "存放智能柜", "Home cabinet";
    LastSeen: "最后读到", "Last seen";
    MissingSince: "查无下落起始时间", "Missing since";
    Tags: "标签", "Tags";
    NoTags: "未登记标签。", "No tags registered.";
    Signout: "借出单", "Sign-out";
    LiveSignout: "当前借出单", "Current sign-out";
    Borrower: "借用人", "Borrower";
    Requester: "申请人（保管员）", "Requested by";
    Purpose: "用途", "Purpose";
    DueAt: "应还时间", "Due";
    MayLeave: "允许带出涉密区域（外带）", "May leave the secure area";
    OverrideNoteLabel: "需特批（规则不通过时填写说明）", "Needs override (a note, when the rules refuse)";
    OverrideNoteHint: "仅当保密员填写特批理由后才能批准；特批理由显示在审批上。", "Only a security officer's written override reason approves it; the reason shows on the approval.";
    ErrOverrideNote: "说明须为 1 至 200 个字符", "The note must be 1 to 200 characters";
    NeedsOverride: "需特批", "Needs override";
    OverrideReasonLabel: "特批理由", "Override reason";
    OverrideButton: "特批并批准", "Override and approve";
    OverrideRequired: "此借出单需特批：请填写特批理由后批准。", "This sign-out needs an override: approve it with a written reason.";
    OverrideReason: "特批理由", "Override reason";
    DaysUnit: "天", "days";
    Expired: "已过期", "expired";
    NoRecord: "无记录", "none on record";
    UpTo: "最高可持有", "up to";
    CarrierNotFound: "没有该涉密载体。", "No such carrier.";
    SignoutNotFound: "没有该借出单。", "No such sign-out.";
    PersonNotFound: "人员登记中没有该人员。", "No such person on the register.";
    CabinetNotFound: "没有该智能柜。", "No such cabinet.";

    // Carrier kinds.
    CarrierKindLabel: "载体类型", "Kind";
    CarrierKindPaper: "纸质文件资料", "Paper";
    CarrierKindMagneticDisk: "磁介质（软盘、磁带）", "Magnetic disk or tape";
    CarrierKindOpticalDisc: "光盘", "Optical disc";
    CarrierKindFlash: "U盘、存储卡", "Flash media";
    CarrierKindHardDisk: "硬盘", "Hard disk";
    CarrierKindLaptop: "笔记本电脑", "Laptop";
    CarrierKindDevice: "其他设备", "Other device";

    // Carrier states.
    CarrierStateLabel: "状态", "State";
    CarrierStateInStorage: "在库", "In storage";
    CarrierStateOut: "借出", "Out";
    CarrierStateMissing: "查无下落", "Missing";
    CarrierStateArchived: "已归档", "Archived";
    CarrierStateDestroyed: "已销毁", "Destroyed";

    // Sign-out states and steps.
    SignoutStateRequested: "待审批", "Awaiting approval";
    SignoutStateApproved: "已批准", "Approved";
    SignoutStateOut: "已借出", "Out";
    SignoutStateReturned: "已归还", "Returned";
    SignoutStateCancelled: "已取消", "Cancelled";
    HistRequested: "提出借出申请", "Sign-out requested";
    HistApproved: "借出审批通过", "Sign-out approved";
    HistIssued: "发放（借出）", "Issued";
    HistReturned: "归还", "Returned";
    HistCancelled: "借出申请取消", "Sign-out cancelled";
    HistPassage: "通过门禁", "Passed gate";
    HistTurnedBack: "在门禁处折返（未通过）", "Turned back at gate (did not pass)";
    HistCabinet: "智能柜读到", "Seen by cabinet";
    HistCabinetIn: "放入智能柜", "Put into cabinet";
    HistCabinetOut: "从智能柜取出", "Taken out of cabinet";
    HistWentMissing: "自此查无下落", "missing from here on";
    HistScan: "扫码", "Scanned at";
    HistAlert: "告警", "Alert";

    // Issue refusals (would_refuse).
    RefusalPersonNotActive: "借用人不在岗（离岗中或已离岗）", "The borrower is not active (leaving or departed)";
    RefusalClearance: "借用人类别无权持有该密级的载体", "The borrower's category may not hold this level";
    RefusalTraining: "借用人保密培训已过期或无记录", "The borrower's secrecy training has expired or is not on record";
    RefusalCommitment: "借用人未签署保密承诺书", "The borrower has not signed a confidentiality commitment";
    RefusalOther: "不符合借出条件", "The issue rules are not met";
    WouldRefuse: "如现在发放，将因以下原因被拒绝：", "An issue now would be refused because:";
    WouldPass: "借用人目前符合发放条件。", "The borrower currently meets the issue rules.";

    // People categories and statuses.
    Category: "人员类别", "Category";
    CategoryCore: "核心涉密人员", "Core";
    CategoryImportant: "重要涉密人员", "Important";
    CategoryGeneral: "一般涉密人员", "General";
    PersonStatusLabel: "在岗状态", "Status";
    PersonActive: "在岗", "Active";
    PersonLeavingStatus: "离岗中（清退）", "Leaving";
    PersonDepartedStatus: "已离岗", "Departed";

    // The carrier register.
    CarriersTitle: "涉密载体登记", "Carrier register";
    SearchCarrier: "按载体编号或标签查询", "Control number or tag";
    NoCarriers: "没有匹配的涉密载体。", "No matching carriers.";
    CarrierTitle: "标题", "Title";
    ErrSearchTooLong: "查询内容不能超过 200 个字符。", "The search text must be at most 200 characters.";
    RegisterCarrier: "登记涉密载体", "Register a carrier";
    ControlNoHint: "1–24 个字符：大写字母、数字、连字符，例如 2024-0017。", "1 to 24 characters of A–Z, 0–9 and -, e.g. 2024-0017.";
    TitleHint: "标题本身可能涉密：只在本系统保管员和保密员的页面显示，绝不印在标签上。", "Titles can themselves be secret: shown only on custodian and security officer pages, never printed on a label.";
    CopyNo: "份号", "Copy number";
    Copies: "份数", "Copies";
    CopiesHint: "绝密载体必须填写份号和份数（顺序编号）。", "Top Secret carriers need a copy number and the number of copies.";
    OwnerUnit: "所属单位", "Owning unit";
    TagsHint: "每行一个：epc:十六进制、barcode:条码内容 或 em:10位十六进制。", "One per line: epc:HEX, barcode:TEXT or em:10 hex digits.";
    EpcToEncode: "待写入的 EPC", "EPC to encode";
    EpcHex: "十六进制", "Hex";
    EpcUri: "纯标识 URI", "Pure-identity URI";
    EpcHint: "按本单位 GS1 厂商识别代码生成的 GIAI-96，已填入标签栏；写入标签后登记。", "A GIAI-96 from this organisation's GS1 Company Prefix, already in the tags field; encode it on the tag and register.";
    EpcUnavailable: "无法生成 EPC：请检查配置项 label_company_prefix。", "No EPC can be proposed: check the label_company_prefix setting.";
    LabelText: "条码标签内容", "Label text";
    LabelAfterControlNo: "填写载体编号后即可生成。", "Shown once the control number is filled in.";
    CarrierRegistered: "涉密载体已登记。", "The carrier is registered.";
    ErrControlNo: "载体编号须为 1–24 个大写字母、数字或连字符。", "The control number must be 1 to 24 characters of A–Z, 0–9 and -.";
    ErrControlNoTaken: "该载体编号已登记。", "That control number is already registered.";
    ErrCarrierKind: "请选择载体类型。", "Choose the kind.";
    ErrCarrierTitle: "标题须为 1–200 个可打印字符。", "The title must be 1 to 200 printable characters.";
    ErrNumber: "须为正整数。", "Must be a whole number.";
    ErrOwnerUnit: "所属单位须为 1–200 个可打印字符。", "The owning unit must be 1 to 200 printable characters.";
    ErrHomeCabinet: "存放位置须为已登记的智能柜。", "The home must be a registered cabinet.";
    ErrTooManyTags: "最多 16 个标签。", "At most 16 tags.";
    ErrTagFormat: "标签格式错误：每行须为 epc:十六进制、barcode:条码内容 或 em:10位十六进制。", "A tag line is malformed: use epc:HEX, barcode:TEXT or em:10 hex digits.";
    ErrTagRepeated: "同一标签填写了两次。", "The same tag is listed twice.";
    ErrTagTaken: "有标签已登记在其他载体上。", "A tag is already registered to another carrier.";
    ErrCopyRequired: "绝密载体须填写份号和份数。", "A Top Secret carrier needs a copy number and the number of copies.";
    ErrCopyRange: "份号须在 1 与份数之间。", "The copy number must be between 1 and the number of copies.";
    ErrLabelMismatch: "CU 条码标签须与本载体编号一致。", "A CU label tag must carry this carrier's control number.";

    // A carrier's page.
    Label: "标签", "Label";
    LabelHint: "标签只印载体编号、密级、份号和条码，不印标题。", "The label shows the control number, level, copy number and barcode — never the title.";
    LabelPrint: "打开标签以打印", "Open the label to print";
    History: "流转记录", "History";
    NoHistory: "暂无记录。", "Nothing recorded yet.";

    // Cabinets.
    CabinetsTitle: "智能柜清点", "Cabinet counts";
    NoCabinets: "尚未登记智能柜。", "No cabinets registered.";
    PresentAsExpected: "在柜（应在且在）", "Present as expected";
    MissingFromCabinet: "应在未在", "Missing";
    ExtraInCabinet: "不应在柜", "Not expected here";
    LastSnapshot: "最后一次上报", "Last report";
    ExtraWrongCabinet: "错柜，应存放于", "wrong cabinet; its home is";
    ExtraNoHome: "未指定存放智能柜", "has no home cabinet";
    ExtraNotInStorage: "登记状态不是在库：", "not in storage on the register:";
    SeenSince: "读到自", "seen since";
    BackToCabinets: "返回智能柜列表", "Back to the cabinets";

    // Scan desk.
    DeskTitle: "扫码台", "Scan desk";
    ScanPrompt: "扫描或输入条码", "Scan or type a barcode";
    ScanHint: "扫码枪读取标签后自动回车；也可输入载体编号或标签（epc:…）。", "A scanner types the label and presses Enter; a control number or a tag (epc:…) may be typed too.";
    UnknownBarcode: "未知条码：", "Unknown barcode:";
    IssueButton: "发放（借出）", "Issue";
    ReturnButton: "归还入库", "Return";
    DeskIssued: "已发放，载体已借出。", "Issued: the carrier is out.";
    DeskReturned: "已归还入库。", "Returned to storage.";
    AlreadyIssued: "该借出单已经发放，重复提交未再次发放。", "This sign-out was already issued; the repeated request issued nothing.";
    AlreadyReturned: "该载体已经归还，重复提交未再次处理。", "This carrier was already returned; the repeated request changed nothing.";
    NotApprovedYet: "该借出单尚未批准，不能发放。", "This sign-out is not approved; it cannot be issued.";
    IssueRefused: "不能发放：", "The issue is refused:";
    CarrierUnavailable: "载体目前不在库，不能发放。", "A carrier is not in storage; it cannot be issued.";
    AwaitingApproval: "借出单正在等待保密员审批。", "The sign-out is waiting for a security officer's approval.";
    NoSignoutYet: "该载体没有已批准的借出单。", "This carrier has no approved sign-out.";
    NoActionNow: "当前没有可执行的操作。", "Nothing can be done with it now.";

    // Sign-out requests.
    RequestSignout: "借出申请", "Request a sign-out";
    CarriersToLend: "借出的载体", "Carriers";
    CarriersHint: "逐个扫描标签（每行一个），也可输入载体编号；或在下方勾选。", "Scan each label (one per line) or type control numbers; or tick them below.";
    OrChoose: "或选择在库载体", "Or choose carriers in storage";
    NoFreeCarriers: "没有可借出的在库载体。", "No carriers are free to lend.";
    DueHint: "按本机时间填写（浏览器未启用脚本时按 UTC）。", "Local time of this browser (UTC when scripts are off).";
    SubmitRequest: "提交申请", "Submit the request";
    SignoutRequested: "借出申请已提交，等待保密员审批：", "Sign-out requested, awaiting approval:";
    LiveSignouts: "进行中的借出单", "Open sign-outs";
    NoLiveSignouts: "没有进行中的借出单。", "No open sign-outs.";
    ErrUnknownBarcodes: "以下条码未登记：", "These barcodes are not registered:";
    ErrNoCarriers: "请至少选择一件载体。", "Choose at least one carrier.";
    ErrTooManyCarriers: "一次最多借出 100 件载体。", "At most 100 carriers per sign-out.";
    ErrCarrierBusy: "下列载体不在库或已有借出单（见下）", "A carrier below is not in storage or already on a sign-out";
    ErrBorrower: "请选择借用人。", "Choose the borrower.";
    ErrPurpose: "用途须为 1–200 个可打印字符。", "The purpose must be 1 to 200 printable characters.";
    ErrDue: "请填写应还时间（日期和时间）。", "Enter the due date and time.";
    ErrDueInPast: "应还时间须晚于现在。", "The due time must be in the future.";

    // Approvals.
    ApprovalsTitle: "借出审批", "Sign-out approvals";
    NoApprovals: "没有待审批的借出申请。", "No sign-outs await approval.";
    ApprovalsSoFar: "已批准", "Approved by";
    ApprovalsNeeded: "尚需批准人数", "Approvals still needed";
    ApproveButton: "批准", "Approve";
    ApprovedDone: "已批准，保管员可以发放。", "Approved: the custodian may issue it.";
    ApprovedNeedsSecond: "已记录您的批准；绝密载体还需另一位保密员批准。", "Your approval is recorded; a Top Secret sign-out needs a second security officer.";
    ErrSelfApproval: "不能批准本人提出或本人借用的申请（监管分离）。", "You may not approve a sign-out you requested or borrow (separation of duties).";
    ErrAlreadyApproved: "您已批准过该申请。", "You have already approved this sign-out.";
    ErrNotAwaitingApproval: "该申请已不在待审批状态（可能已被批准或取消）。", "This sign-out no longer awaits approval (it may already be approved or cancelled).";

    // People.
    PeopleTitle: "涉密人员", "People with access";
    PersonName: "姓名", "Name";
    Department: "部门", "Department";
    BadgeTag: "工卡标签", "Badge tag";
    TrainingValidUntil: "保密培训有效期至", "Training valid until";
    CommitmentSignedOn: "保密承诺书签署日期", "Commitment signed on";
    LeavingSince: "离岗开始", "Leaving since";
    DecommissioningEnds: "脱密期截止", "Decommissioning ends";
    AddPerson: "登记涉密人员", "Register a person";
    PersonCreated: "人员已登记。", "The person is registered.";
    PersonLeaving: "已开始离岗程序：请清退其持有的全部载体。", "Leaving started: every carrier the person holds must be returned.";
    PersonDeparted: "已批准离岗，脱密期开始计算。", "Departure approved; the decommissioning period has started.";
    LeaveButton: "开始离岗", "Start leaving";
    DepartButton: "批准离岗", "Approve departure";
    DepartHint: "批准离岗前须清退：该人员持有的全部载体须已归还并核验。", "Before a departure is approved, every carrier the person holds must be returned and verified.";
    ErrPersonName: "姓名须为 1–200 个可打印字符。", "The name must be 1 to 200 printable characters.";
    ErrDepartment: "部门须为 1–200 个可打印字符。", "The department must be 1 to 200 printable characters.";
    ErrCategory: "请选择人员类别。", "Choose the category.";
    ErrBadgeTag: "工卡标签须为 1–64 个字母、数字或 . _ - 字符。", "The badge tag must be 1 to 64 characters of A–Z a–z 0–9 . _ -.";
    ErrBadgeTaken: "该工卡标签已登记给其他人员。", "That badge tag is already registered to someone.";
    ErrAlreadyLeaving: "该人员已在离岗程序中。", "The person is already leaving.";
    ErrAlreadyDeparted: "该人员已离岗。", "The person has already departed.";
    ErrCarriersOutstanding: "不能批准离岗：该人员仍持有涉密载体，须先清退（全部归还并核验）。持有数量：", "The departure cannot be approved: the person still holds carriers, which must be returned and verified first. Carriers held:";
    ErrPeriodOutOfRange: "脱密期超出可表示的日期范围。", "The decommissioning period ends beyond the calendar.";
    ErrPeriodTooShort: "脱密期短于该类别的最短期限。", "The decommissioning period is shorter than the category's minimum.";
    ErrNotLeaving: "此人尚未开始离岗。", "The person has not started leaving.";
    ErrNotCleared: "尚未出具清退证明：请先核实全部载体已退还。", "The clearance has not been certified: verify every carrier is back first.";
    ErrAlreadyCleared: "清退证明已出具。", "The clearance is already certified.";
    ErrPeriodInput: "脱密期月数须为 1–1200 的整数，且不能与“终身”同时选择。", "The period must be 1 to 1200 months, and not together with lifelong.";
    ErrEditInput: "请填写修改原因，并检查各项格式（日期、类别、密级不得高于类别）。", "Give the reason and check the fields (dates, category; the clearance may not exceed the category).";
    PersonCleared: "已出具清退证明：全部载体已归还。", "Clearance certified: every carrier is back.";
    PersonEdited: "人员信息已更新，修改已记入历史。", "The record is updated; the change is in its history.";
    Clearance: "涉密等级", "Clearance";
    Vetting: "资格审查", "Vetting";
    Assessment: "考核", "Assessment";
    Outcome: "结论", "Outcome";
    ClearedAt: "清退证明", "Clearance certified";
    Lifelong: "终身（出境限制）", "Lifelong (travel restrictions)";
    DepartureSequence: "离岗程序", "Departure";
    CarriersHeld: "仍持有的载体", "Carriers still held";
    NothingHeld: "未持有任何载体。", "Holds no carriers.";
    ReturnOnSignout: "借出单", "sign-out";
    ClearanceButton: "出具清退证明", "Certify clearance";
    PeriodMonths: "脱密期（月）", "Decommissioning period (months)";
    PersonHistory: "修改历史", "History of changes";
    EditPerson: "修改人员信息", "Edit the record";
    EditHint: "只填写要修改的项；原因必填。", "Fill in only what changes; the reason is required.";
    Reason: "原因", "Reason";
    Save: "保存", "Save";
    Reminders: "提醒", "Reminders";
    ReminderTraining: "保密培训即将到期", "Training runs out";
    ReminderCommitment: "保密承诺即将到期", "Commitment runs out";
    ReminderDecommissioning: "脱密期即将结束", "Decommissioning period ends";
    StateActive: "在岗", "Active";
    StateLeaving: "离岗中", "Leaving";
    StateDecommissioning: "脱密期中", "In decommissioning";
    StateDeparted: "已离岗", "Departed";
    ExpiringTraining: "培训已过期或即将到期", "Training expired or expiring";
    NewPersonLegend: "或：同时登记账户持有人", "Or register the account holder with the account";
    ErrPersonDuties: "管理员、保密员、审计员账户须关联人员，且同一人员只能担任其中一种角色。", "Admin, security officer and auditor accounts must be linked to a person, and one person may hold only one of those roles.";
    ErrNewPerson: "账户持有人的姓名和部门须为 1–200 个可打印字符。", "The holder's name and department must be 1 to 200 printable characters.";

    // Overdue and missing.
    OverdueTitle: "逾期未还", "Overdue sign-outs";
    NoOverdue: "没有逾期未还的借出单。", "No sign-outs are overdue.";
    CarriersOut: "未归还的载体", "Carriers still out";
    DaysOverdue: "逾期天数", "Days overdue";
    MissingTitle: "查无下落的载体", "Missing carriers";
    NoMissing: "没有查无下落的载体。", "No carriers are missing.";
    LeakDeadline: "泄密认定期限", "Leak deadline";
    LeakDeadlineHint: "查无下落的载体须立即报告；绝密载体 10 天、机密和秘密载体 60 天内仍未找到的，按泄密事件处理和报告。", "A missing carrier is reported at once; if still not found after 10 days (Top Secret) or 60 days (Secret, Confidential) it is handled and reported as a leak.";
    DaysLeft: "剩余天数", "Days left";
    DeadlinePassed: "已超过期限", "deadline passed by";

    // Lifecycle: corrections, missing and found, incident records.
    LcTitle: "更正与查无下落", "Corrections, missing and found";
    LcDone: "已记录。", "Recorded.";
    LcErrAlreadyMissing: "该载体已登记为查无下落。", "The carrier is already reported missing.";
    LcErrNotMissing: "该载体未登记为查无下落。", "The carrier is not missing.";
    LcErrNotInCirculation: "该载体已退出流转（已归档或已销毁）。", "The carrier is out of circulation (archived or destroyed).";
    LcErrNothingToChange: "没有任何更改。", "Nothing would change.";
    LcErrDuplicateTag: "某个标签已属于另一载体。", "A tag belongs to another carrier.";
    LcErrInvalid: "请填写必填项（说明最多 2000 字，更正原因最多 500 字），格式须正确。", "Fill in the required fields correctly (notes up to 2000 characters, a correction reason up to 500).";
    LcErrRule: "不符合台账规则（份号、存放柜或标签）。", "This breaks a register rule (copy number, home cabinet or label).";
    LcCauseManual: "人工报告", "reported by hand";
    LcCauseCabinet: "从智能柜中取走且无借出单", "taken from its cabinet without a sign-out";
    LcCauseOverdue: "借出逾期未还", "loan overdue";
    LcCauseRemoval: "未经授权带出，未在门口拦下", "unauthorised removal not stopped at the gate";
    LcFoundNote: "在何处、如何找到", "Where and how it was found";
    LcFoundButton: "登记已找到", "Report found";
    LcMissingNote: "发生了什么（不要写载体标题）", "What happened (never the title)";
    LcMissingButton: "报告查无下落", "Report missing";
    LcCorrectLink: "更正登记信息", "Correct the register entry";
    LcCorrections: "更正记录", "Corrections";
    LcNoCorrections: "没有更正记录。", "No corrections.";
    LcIncidents: "事件记录", "Incident records";
    LcNoIncidents: "没有事件记录。", "No incidents.";
    LcFoundAt: "找到时间", "Found at";
    LcFoundBy: "找到人", "Found by";
    LcOpen: "尚未找到", "not found yet";
    LcIncidentRecord: "泄密事件报告记录", "Incident record";
    LcIncidentNotFound: "没有该事件记录。", "No such incident record.";
    LcField: "项目", "Field";
    LcBefore: "更正前", "Before";
    LcAfter: "更正后", "After";
    LcCorrectTitle: "更正登记信息", "Correct the entry of";
    LcCorrectHint: "可更正标题、所属单位、存放柜、标签和份号，须写明原因。密级和编号只能通过变更密级流程修改。", "Title, owning unit, home cabinet, tags and copy number can be corrected, with a reason. The level and the control number change only by reclassification.";
    LcReason: "更正原因", "Reason for the correction";
    LcCorrectButton: "保存更正", "Save the correction";
    LcCause: "原因", "Cause";
    LcReportedBy: "报告人", "Reported by";
    LcWhatHappened: "经过", "What happened";
    LcTold: "已报告对象", "Who was told";
    LcToldAt: "报告时间", "Told at";
    LcToldWho: "已向谁报告（如保密局、单位领导）", "Who was told (the secrecy bureau, the unit's leader...)";
    LcDefaultNow: "留空为现在", "empty for now";
    LcToldButton: "记录报告情况", "Record who was told";
    LcPrintHint: "用浏览器的打印功能（Ctrl+P）打印本记录，附于向保密行政管理部门的报告。", "Print this record with the browser (Ctrl+P) for the report to the secrecy bureau.";

    // Notification deliveries.
    NotificationsTitle: "告警通知投递", "Alert notifications";
    NoDeliveries: "还没有通知投递。", "No notifications yet.";
    DeliveryChannel: "方式", "Channel";
    DeliveryTarget: "接收方", "Recipient";
    DeliveryState: "投递状态", "State";
    DeliveryAttempts: "尝试次数", "Tries";
    DeliveryLastError: "最近错误", "Last error";
    DeliveryPending: "待发送", "pending";
    DeliveryRetrying: "重试中", "retrying";
    DeliverySent: "已送达", "sent";
    DeliveryFailed: "已失败", "failed";

    // Alert history.
    AlertHistoryTitle: "告警处理记录", "Alert history";
    AlertKindLabel: "告警类型", "Kind";
    AlertStateLabel: "处理状态", "State";
    NoHandledAlerts: "没有已确认或已处理的告警。", "No acknowledged or resolved alerts.";
    RaisedAt: "发生时间", "Raised";
    AcknowledgedBy: "确认人", "Acknowledged by";
    ResolvedBy: "处理人", "Resolved by";

    // Approvals, one model (issue #10 A): reject with a reason, requests of every kind.
    SignoutStateRejected: "已驳回", "Rejected";
    CarrierStateInTransfer: "移交中", "In transfer";
    CarrierStateDispatched: "机要传递中", "Dispatched";
    CarrierStateDeclassified: "已解密", "Declassified";
    RejectButton: "驳回", "Reject";
    RejectReason: "驳回理由", "Reason for rejecting";
    RejectedDone: "已驳回，申请人将看到理由。", "Rejected: the requester sees the reason.";
    YouApprovedAlready: "您已批准，等待另一位保密员。", "You have approved; waiting for another security officer.";
    ErrReason: "理由须为 1–200 个可打印字符。", "The reason must be 1 to 200 printable characters.";
    RequestNotFound: "没有该申请。", "No such request.";
    RequestsTitle: "其他待审批申请", "Other requests awaiting approval";
    NoRequests: "没有其他待审批的申请。", "No other requests await approval.";
    RequestKindLabel: "申请类型", "Request";
    RequestKindSignout: "借出", "Sign-out";
    RequestKindCopy: "复制", "Copy";
    RequestKindDestruction: "销毁", "Destruction";
    RequestKindTransfer: "移交", "Transfer";
    RequestKindDispatch: "机要传递", "Dispatch";
    RequestKindReclassification: "变更密级/解密", "Reclassification";
    RequestKindTravel: "出境", "Travel abroad";
    RequestStateRequested: "待审批", "Awaiting approval";
    RequestStateApproved: "已批准", "Approved";
    RequestStateRejected: "已驳回", "Rejected";
    RequestStateDone: "已执行", "Carried out";
    RejectedBecause: "驳回理由", "Rejected because";
    HistRejected: "借出申请被驳回", "Sign-out rejected";
    LineageTitle: "复制关系与申请", "Lineage and requests";
    CopiedFrom: "复制自", "Copied from";
    LineageRoot: "原件", "First original";
    CopiesMade: "已复制份", "Copies made";
    RequestsAboutCarrier: "与本载体有关的申请", "Requests about this carrier";
    MakeCopies: "制作复制件", "Make the copies";
    RecordDestruction: "登记销毁", "Record the destruction";
    NewRequest: "提出申请（复制、销毁、变更密级）", "New request (copy, destruction, reclassification)";
    CopyCount: "份数", "Number of copies";
    SendRequest: "提交申请", "Send the request";
    DestructionMethod: "销毁方式", "Method";
    NewLevel: "新密级", "New level";
    MethodShred: "碎纸", "Shred";
    MethodIncinerate: "焚毁", "Incinerate";
    MethodDegauss: "消磁后粉碎", "Degauss, then shred";
    MethodPhysical: "物理销毁", "Physical destruction";
    RequestRefused: "申请被拒绝", "Refused";
    RequestSent: "申请已提交，等待保密员审批。", "Request sent; it awaits a security officer's approval.";
    Witness: "监销人", "Witness";
    WitnessRules: "两名不同的监销人，不能是申请人，其中至少一名保密员；清点数量须与申请一致。", "Two different witnesses, neither the requester, at least one a security officer; the count must match the request.";
    CountedCarriers: "清点数量", "Carriers counted";
    ErrNotApprovedYet: "该申请尚未批准，不能执行。", "This request is not approved yet and cannot be carried out.";
    // Printable reports (web/reports.rs).
    NavReports: "报表", "Reports";
    ReportsTitle: "可打印报表", "Printable reports";
    ReportsHint: "报表按 A4 纸排版，每页重复表头并编页码；用浏览器打印（Ctrl+P）或另存为 PDF。", "Reports are laid out for A4 paper with the header repeated and numbered pages; print them from the browser (Ctrl+P) or save them as PDF.";
    ReportPrintHint: "打印：Ctrl+P（A4）", "Print: Ctrl+P (A4)";
    ReportRegisterTitle: "涉密载体台账", "Register of classified carriers";
    ReportOverdueTitle: "逾期未还借出单", "Overdue loans";
    ReportMissingTitle: "查无下落载体及泄密期限", "Missing carriers and leak deadlines";
    ReportMadeAt: "制表时间", "Made at";
    ReportRows: "条目数", "Entries";
    ReportNothing: "无记录。", "Nothing to report.";
    ReportPreparedBy: "制表人", "Prepared by";
    ReportCheckedBy: "审核人", "Checked by";
    ReportApprovedBy: "批准人", "Approved by";
    ReportDate: "日期", "Date";
    ReportKind: "类型", "Kind";
    ReportCarrierTitle: "标题", "Title";
    ReportCopy: "份号", "Copy";
    ReportState: "状态", "State";
    CsvExportsTitle: "导出 CSV", "CSV exports";
    CsvExportsHint: "UTF-8（带 BOM，Excel 可直接打开中文），每次导出都记入审计。", "UTF-8 with a BOM (Excel opens Chinese correctly); every export is audited.";
    CsvCarriers: "载体台账", "Carrier register";
    CsvPeople: "涉密人员", "People";
    CsvSignouts: "借出单", "Sign-outs";
    CsvAlerts: "告警", "Alerts";
    // Guard console, second round (issue 15).
    OpenAlarms: "未确认警报", "Open alarms";
    FilterAlerts: "按类型筛选警报", "Filter alerts by kind";
    FilterAll: "全部", "All";
    FilterGate: "通道门警报", "Gate alarms";
    FilterReminder: "提醒（逾期、丢失等）", "Reminders (overdue, missing…)";
    FilterDevice: "设备故障", "Device faults";
    ShowDetails: "展开", "Details";
    HideDetails: "收起", "Hide";
    Movement: "载体去向", "Carrier movement";
    MovementLeft: "已带出区域", "left the area";
    MovementTurnedBack: "已折返，未带出", "turned back, not taken out";
    TurnedBackBanner: "警报：有人试图带出涉密载体（已折返）", "ALARM: attempt to remove a classified carrier (turned back)";
    NewAlertTitle: "新警报", "New alert";
    AuditExportCsv: "导出 CSV", "Export CSV";
    ConditionCheck: "归还检查（可选）", "Condition check (optional)";
    SealLabel: "封条", "Seal";
    NotChecked: "未检查", "not checked";
    SealIntact: "完好", "intact";
    SealBroken: "已破损", "broken";
    PagesCounted: "清点页数", "Pages counted";
    ConditionNote: "检查备注", "Note";
    ConditionInvalid: "归还检查填写有误：页数最多 100000，备注最多 500 字", "The condition check is out of range: at most 100000 pages, a note of at most 500 characters";
    OutcomeLabel: "结果", "Outcome";
    OutcomeNone: "（请选择）", "(choose)";
    OutcomeStopped: "在门口拦下", "stopped at the gate";
    OutcomeBroughtBack: "载体已带回", "carrier brought back";
    OutcomePersonLeft: "人员已离开", "person left";
    ReaderResumed: "读写器已恢复", "Reader back";
    MinutesUnit: "分钟", "minutes";
    HoursUnit: "小时", "hours";
    OverdueMark: "逾期", "overdue";
    Lateness: "逾期时长", "Late by";
    NavOfficerHome: "待办", "To do";
    OfficerHomeTitle: "现在需要我处理的事", "What needs me now";
    NeedsApproval: "待审批的借出申请", "Sign-outs awaiting approval";
    TrainingExpiring: "培训已过期或即将过期", "Training expired or expiring";
    NothingNow: "目前没有。", "Nothing now.";

    // Audit actions in words (the code stays in the title).
    ActSessionCreate: "登录", "Signed in";
    ActSessionDelete: "退出登录", "Signed out";
    ActSessionRevoke: "撤销会话", "Sessions revoked";
    ActUserCreate: "创建账户", "Account created";
    ActUserDisable: "停用账户", "Account disabled";
    ActUserEnable: "启用账户", "Account enabled";
    ActUserPasswordReset: "重置密码", "Password reset";
    ActUserPasswordChange: "修改密码", "Password changed";
    ActZoneCreate: "创建区域", "Zone created";
    ActDeviceCreate: "登记设备", "Device registered";
    ActDeviceRevoke: "吊销设备", "Device revoked";
    ActDeviceKeyRotate: "更换设备密钥", "Device key rotated";
    ActDeviceBatch: "设备上报批次", "Device batch";
    ActPersonCreate: "登记人员", "Person registered";
    ActPersonLeave: "开始离岗", "Leaving started";
    ActPersonDepart: "批准离岗", "Departure approved";
    ActCarrierCreate: "登记载体", "Carrier registered";
    ActCarrierMissing: "载体标记丢失", "Carrier marked missing";
    ActCarrierFound: "载体找回", "Carrier found";
    ActSignoutRequest: "申请借出", "Sign-out requested";
    ActSignoutApprove: "批准借出", "Sign-out approved";
    ActSignoutIssue: "发放载体", "Carriers issued";
    ActSignoutReturn: "归还载体", "Carriers returned";
    ActSignoutCancel: "取消借出单", "Sign-out cancelled";
    ActAlertRaise: "产生告警", "Alert raised";
    ActAlertAcknowledge: "确认告警", "Alert acknowledged";
    ActAlertResolve: "处理告警", "Alert resolved";
    ActAlertReaderResumed: "读写器恢复", "Reader recovered";
    ActDeliveryGiveUp: "放弃通知投递", "Notification given up";
    AllActions: "全部操作", "All actions";
    BatchesHidden: "条设备上报批次已隐藏", "device batch entries hidden";
    ShowBatches: "显示设备上报批次", "Show device batches";
    HideBatches: "隐藏设备上报批次", "Hide device batches";

    // First-run guidance for the administrator.
    NavSetup: "开始", "Start";
    SetupTitle: "系统设置步骤", "Setting up Custos";
    SetupNext: "下一步：", "Next:";
    SetupDone: "基本设置已完成。", "The basic setup is done.";
    StepZones: "建立区域（涉密区域及其密级）", "Create the zones (secure areas and their levels)";
    StepDevices: "登记设备（通道门、智能柜、桌面读写器）", "Register the devices (gates, cabinets, desks)";
    StepOfficer: "创建保密员账户（登记人员、审批）", "Create a security officer account (registers people, approves)";
    StepCustodian: "创建载体管理员账户（登记载体、借出归还）", "Create a custodian account (registers carriers, signs them out)";
    StepGuard: "创建警卫账户（警卫台）", "Create a guard account (guard console)";
    StepAuditor: "创建审计员账户", "Create an auditor account";
    StepDone: "已完成", "done";
    StepTodo: "待完成", "to do";
    LabelSheet: "标签页（A4，多枚）", "Page of labels (A4)";
    LabelRoll: "单枚标签（标签打印机卷纸 50×30 mm）", "Single label (label printer roll, 50×30 mm)";
    PrintNow: "打印", "Print";
    CheckPassed: "规则检查通过：可以发放给此人", "Rules checked: these carriers may be issued to this person";
    CheckRefused: "规则检查：发放时将被拒绝，原因如下", "Rules checked: the issue would be refused because";
    BorrowerHint: "刷工作证，或输入姓名（输入时显示在岗人员）", "Scan the badge, or type a name (people in post are suggested as you type)";
    ErrBorrowerAmbiguous: "有多人同名，请从提示中选择或输入更完整的姓名", "Several people match: pick one from the suggestions or type more of the name";
    ErrBorrowerUnknown: "找不到这个人：请检查姓名或重新刷卡", "Nobody matches: check the name or scan the badge again";
    SetupPeopleCarriers: "之后由保密员登记人员，载体管理员登记载体。", "Then the security officer registers the people and the custodian the carriers.";

    // Stocktakes and transfers (web/moves.rs).
    NavStocktakes: "清点", "Stocktakes";
    NavTransfers: "移交签收", "Transfers";
    MovesDone: "已完成。", "Done.";
    MovesRefused: "未执行：", "Not done:";
    StocktakesTitle: "载体清点", "Stocktakes";
    StocktakeTitle: "清点", "Stocktake";
    StocktakeOpen: "开始清点", "Open a stocktake";
    StocktakeScope: "清点范围", "Scope";
    ScopeDevice: "智能柜", "Cabinet";
    ScopeZone: "区域", "Zone";
    ScopeCustodian: "持有人", "Holder";
    StocktakeScopeRef: "智能柜编号、区域编号或人员编号", "Cabinet id, zone id or person id";
    StocktakeDesk: "扫码台（可选，其读取计入清点）", "Desk (optional; its reads count)";
    StocktakesNone: "尚无清点记录。", "No stocktakes yet.";
    StocktakeNotFound: "没有这次清点。", "No such stocktake.";
    OpenedAt: "开始于", "Opened";
    StocktakeSignedBy: "清点结束签字", "Closed and signed by";
    StocktakeExpected: "应有", "Expected";
    StocktakeSeen: "实有", "Seen";
    StocktakeMissing: "缺失", "Missing";
    StocktakeUnexpected: "多出", "Unexpected";
    StocktakeScanHint: "扫描标签或输入编号（每行一个）", "Scan tags or type control numbers (one per line)";
    StocktakeScan: "记录扫描", "Record scans";
    StocktakeClose: "结束清点并签字", "Close and sign";
    ResolutionLabel: "处理方式", "Settle as";
    ResolutionMissing: "报告查无下落", "Report missing";
    ResolutionCorrection: "更正", "Correction";
    MoveNote: "说明", "Note";
    ResolveButton: "处理", "Settle";
    TransfersTitle: "载体移交与签收", "Transfers";
    TransferNew: "申请移交", "Ask for a transfer";
    TransferCarriers: "载体编号或标签（每行一个）", "Control numbers or tags (one per line)";
    TransferFromUnit: "或：撤并单位的全部载体（单位名称）", "Or: every carrier of a dissolved unit (unit name)";
    TransferToUnit: "接收单位", "Receiving unit";
    TransferToCustodian: "接收保管员（人员编号，可选）", "Receiving custodian (person id, optional)";
    MoveReason: "事由", "Reason";
    TransferSubmit: "提交移交申请", "Ask for the transfer";
    TransfersNone: "尚无移交。", "No transfers yet.";
    HandOverButton: "交出（移交中）", "Hand over";
    ReceiveButton: "签收", "Sign for receipt";
    StepHandedOver: "交出", "Handed over";
    StepReceived: "签收", "Received";
    StepSent: "发出", "Sent";
    StepDelivered: "送达", "Delivered";
    NavCollections: "年底收缴", "Year-end collection";
    NavRetention: "到期载体", "Retention review";
    CollectionsTitle: "年底收缴", "Year-end collection";
    CollectionYear: "年度", "Year";
    CollectionOpen: "开始收缴", "Open the collection";
    CollectionsNone: "尚无收缴。", "No collections yet.";
    CollectionNotFound: "没有这次收缴。", "No such collection.";
    CalledIn: "应收缴", "Called in";
    Returned: "已交回", "Returned";
    StillOpen: "未处理", "Open";
    CollectionOutcome: "处理结果", "Outcome";
    OutcomeKept: "留存", "Kept";
    OutcomeArchived: "归档", "Archived";
    OutcomeDestroyed: "销毁", "Destroyed";
    CloseItem: "确认", "Close";
    RetentionTitle: "超过保管期限的载体", "Carriers past their retention";
    RetentionNone: "没有超过保管期限的载体。", "No carrier is past its retention.";

    // Lists: search, sort, pages.
    SearchCarrierWords: "查询（编号、标题词、持有人、部门、标签）", "Search (number, title words, holder, department, tag)";
    SortLabel: "排序", "Sort by";
    SortRegistered: "登记顺序", "Registration order";
    OrderLabel: "顺序", "Order";
    OrderAscending: "升序", "Ascending";
    OrderDescending: "降序", "Descending";
    Pages: "翻页", "Pages";
    NextPage: "下一页", "Next page";
    FirstPage: "回到第一页", "First page";
    PagingReset: "翻页位置已失效，已显示第一页。", "That page position no longer applies; showing the first page.";
    TagDetails: "标签详情", "Tag details";

    // Lists on the other pages (people, sign-outs, alert history, audit, devices).
    NavSignoutList: "借出单查询", "Sign-outs";
    SignoutsTitle: "借出单", "Sign-outs";
    SignoutNumber: "单号", "No.";
    SignoutStateLabel: "状态", "State";
    NoSignoutsFound: "没有匹配的借出单。", "No matching sign-outs.";
    SearchSignoutWords: "查询（借用人、申请人、用途、载体编号）", "Search (borrower, requester, purpose, control number)";
    SearchAlertWords: "查询（类型、设备、载体编号、处理说明）", "Search (kind, device, control number, note)";
    SearchDeviceWords: "查询（设备编号、类型、区域）", "Search (device id, kind, zone)";
    AllSignouts: "全部借出单", "All sign-outs";
    AlertNumber: "编号", "No.";
    SecrecyPeriod: "保密期限（年）", "Secrecy period (years)";
    SecrecyPeriodHint: "留空即按密级的最长期限：绝密30年、机密20年、秘密10年。", "Empty: the level's longest period: Top Secret 30 years, Secret 20, Confidential 10.";
    ErrSecrecyPeriod: "保密期限须为1年至该密级的最长期限（绝密30年、机密20年、秘密10年）", "The secrecy period must be 1 year up to the level's longest (Top Secret 30, Secret 20, Confidential 10)";
    SecrecyPeriodFact: "保密期限", "Secrecy period";
    SecrecyYearsUnit: "年", "years";
    SoundTap: "点按此处启用警报声音（浏览器阻止了自动播放）", "Tap to enable alarm sound (the browser blocked autoplay)";
    // Printable records (web/record_reports.rs, exports2).
    ReportBack: "返回", "Back";
    PrintRecord: "打印销毁记录", "Print the destruction record";
    PrintReport: "打印报表", "Print the report";
    PrintDepartment: "打印本部门", "Print this department";
    DestructionPlace: "销毁地点", "Place";
    StocktakeStillOpen: "清点尚未结束", "Still open";
    StocktakeCounts: "清点结果", "Result";
    StocktakeResult: "结果", "Result";
    StocktakeCountedBy: "清点人", "Counted by";
    RecordReportsTitle: "清点、收缴、销毁记录", "Stocktakes, collections, destructions";
    ReportStocktakeTitle: "涉密载体清点结果", "Stocktake result";
    ReportDestructionTitle: "涉密载体销毁记录", "Destruction record";
    ReportCollectionTitle: "年底涉密载体收缴情况", "Year-end collection";
    ReportRequest: "申请", "Request";
    ReportRequestedBy: "申请人", "Requested by";
    ReportApprovals: "审批", "Approvals";
    DestroyedAt: "销毁时间", "Destroyed at";
    AllDepartments: "全部部门", "All departments";
    CollectionComplete: "已全部处理", "All closed";
    ReportClosedBy: "处理人", "Closed by";
    // Repair as a carrier state, the repair and dispatch pages (web/repairs.rs, web/dispatches.rs).
    CarrierStateInRepair: "维修中", "In repair";
    ErrCarrierInRepair: "载体正在维修中，维修返回前不能借出、发放、复制、移交、传递或销毁", "A carrier is out for repair: it cannot be signed out, issued, copied, transferred, dispatched or destroyed until it returns";
    NavRepairs: "维修", "Repairs";
    RepairsTitle: "涉密设备维修", "Repairs";
    RepairSend: "送修", "Send for repair";
    RepairCarrier: "载体编号或标签", "Control number or tag";
    RepairRepairer: "维修单位或人员（须具备资质）", "Repairer (qualified firm or person)";
    RepairQualificationNo: "资质证书编号", "Qualification certificate no.";
    RepairQualifiedUntil: "资质有效期至", "Qualification valid until";
    RepairMode: "维修方式", "Where";
    RepairModeOnSite: "现场维修（全程陪同）", "On site, under escort";
    RepairModeDispatch: "送外维修（机要传递）", "Off site, by dispatch";
    RepairEscort: "陪同人员", "Escort";
    RepairMedia: "存储介质", "Storage media";
    RepairMediaRemoved: "拆除并由保管员留存", "Removed and kept by the custodian";
    RepairMediaOnSite: "不拆除（现场维修）", "Left in place (repaired on site)";
    RepairMediaNote: "拆下的介质及存放位置", "Media removed and where they are kept";
    RepairSubmit: "登记送修", "Record the repair";
    RepairsOpen: "维修中", "Out for repair";
    RepairsReturned: "已返回", "Returned";
    RepairsNone: "没有维修记录。", "No repairs yet.";
    RepairSentAt: "送修时间", "Sent";
    RepairReturnNote: "返回检查情况（介质装回、封条）", "Found on return (media put back, seals)";
    RepairReturnButton: "登记返回", "Record the return";
    RepairOpenOne: "此载体正在维修", "This carrier is out for repair";
    NavDispatches: "机要传递", "Dispatches";
    DispatchesTitle: "机要传递", "Dispatches";
    DispatchNew: "申请传递", "Ask for a dispatch";
    DispatchDestination: "收件单位", "Destination";
    DispatchCourier: "机要通信人员", "Courier";
    DispatchSealedBy: "封装人", "Sealed by";
    DispatchWindowHours: "放行时限（小时）", "Gate window (hours)";
    DispatchSubmit: "提交传递申请", "Ask for the dispatch";
    DispatchesNone: "尚无传递。", "No dispatches yet.";
    SendButton: "发出", "Send";
    DeliveredButton: "确认送达", "Record delivery";
    DispatchWindowUntil: "放行截止", "Gate window ends";
    DispatchReceivedBy: "收件人", "Received by";
    // Travel abroad (people2).
    NavTravel: "出境登记", "Travel abroad";
    TravelRegisterTitle: "出境登记：谁在何时出境", "Travel register: who is abroad when";
    TravelRegisterHint: "已批准的出境，按出境日期排列。", "Approved travel, by first day abroad.";
    TravelSection: "出境申请", "Travel abroad";
    NoTravel: "无出境记录", "No travel on record";
    TravelDestination: "目的地", "Destination";
    TravelFrom: "出境日期", "From";
    TravelUntil: "返回日期", "Until";
    TravelState: "状态", "State";
    TripAbroadNow: "正在境外", "abroad now";
    TripDuringDecommissioning: "脱密期内", "during the decommissioning period";
}

/// The name of a role.
pub fn role(role: Role) -> Key {
    match role {
        Role::Admin => Key::RoleAdmin,
        Role::SecurityOfficer => Key::RoleSecurityOfficer,
        Role::Custodian => Key::RoleCustodian,
        Role::Guard => Key::RoleGuard,
        Role::Auditor => Key::RoleAuditor,
    }
}

/// The name of a classification level.
pub fn level(level: Level) -> Key {
    match level {
        Level::TopSecret => Key::LevelTopSecret,
        Level::Secret => Key::LevelSecret,
        Level::Confidential => Key::LevelConfidential,
    }
}

/// The name of a level given by its code (`TS`, `S`, `C`, `public`); `None` for other text.
pub fn level_code(code: &str) -> Option<Key> {
    ZoneLevel::from_code(code).map(zone_level)
}

/// The name of a zone level.
pub fn zone_level(zl: ZoneLevel) -> Key {
    match zl {
        ZoneLevel::Public => Key::LevelPublic,
        ZoneLevel::Classified(l) => level(l),
    }
}

/// The name of a device kind.
pub fn device_kind(kind: DeviceKind) -> Key {
    match kind {
        DeviceKind::Gate => Key::KindGate,
        DeviceKind::Cabinet => Key::KindCabinet,
        DeviceKind::Desk => Key::KindDesk,
    }
}

/// The name of an alert kind.
pub fn alert_kind(kind: AlertKind) -> Key {
    match kind {
        AlertKind::UnauthorizedRemoval => Key::AlertUnauthorizedRemoval,
        AlertKind::ClearanceViolation => Key::AlertClearanceViolation,
        AlertKind::CabinetRemoval => Key::AlertCabinetRemoval,
        AlertKind::WrongCabinet => Key::AlertWrongCabinet,
        AlertKind::Overdue => Key::AlertOverdue,
        AlertKind::Missing => Key::AlertMissing,
        AlertKind::LeakDeadline => Key::AlertLeakDeadline,
        AlertKind::ReaderSilent => Key::AlertReaderSilent,
        AlertKind::ReaderFault => Key::AlertReaderFault,
        AlertKind::DeviceAuthFailed => Key::AlertDeviceAuthFailed,
        AlertKind::ReplayRejected => Key::AlertReplayRejected,
        AlertKind::UnknownTag => Key::AlertUnknownTag,
        AlertKind::TagCloneSuspected => Key::AlertTagCloneSuspected,
        AlertKind::NotificationFailed => Key::AlertNotificationFailed,
        AlertKind::DestroyedSeen => Key::AlertDestroyedSeen,
        AlertKind::TrainingExpiredHolding => Key::AlertTrainingExpiredHolding,
        AlertKind::CollectionDue => Key::AlertCollectionDue,
        AlertKind::TrainingExpiring => Key::AlertTrainingExpiring,
        AlertKind::CommitmentExpiring => Key::AlertCommitmentExpiring,
        AlertKind::DecommissioningEnding => Key::AlertDecommissioningEnding,
    }
}

/// The name of an alert state.
pub fn alert_state(state: AlertState) -> Key {
    match state {
        AlertState::Open => Key::StateOpen,
        AlertState::Acknowledged => Key::StateAcknowledged,
        AlertState::Resolved => Key::StateResolved,
    }
}

/// The name of a severity.
pub fn severity(severity: Severity) -> Key {
    match severity {
        Severity::Critical => Key::SeverityCritical,
        Severity::High => Key::SeverityHigh,
        Severity::Medium => Key::SeverityMedium,
        Severity::Low => Key::SeverityLow,
    }
}

/// The name of a passage direction given as `in`/`out`; `None` for other text.
pub fn direction(code: &str) -> Option<Key> {
    match code {
        "in" => Some(Key::DirectionIn),
        "out" => Some(Key::DirectionOut),
        _ => None,
    }
}

/// The name of a carrier kind.
pub fn carrier_kind(kind: CarrierKind) -> Key {
    match kind {
        CarrierKind::Paper => Key::CarrierKindPaper,
        CarrierKind::MagneticDisk => Key::CarrierKindMagneticDisk,
        CarrierKind::OpticalDisc => Key::CarrierKindOpticalDisc,
        CarrierKind::Flash => Key::CarrierKindFlash,
        CarrierKind::HardDisk => Key::CarrierKindHardDisk,
        CarrierKind::Laptop => Key::CarrierKindLaptop,
        CarrierKind::Device => Key::CarrierKindDevice,
    }
}

/// The name of a carrier state.
pub fn carrier_state(state: CarrierState) -> Key {
    match state {
        CarrierState::InStorage => Key::CarrierStateInStorage,
        CarrierState::Out => Key::CarrierStateOut,
        CarrierState::Missing => Key::CarrierStateMissing,
        CarrierState::Archived => Key::CarrierStateArchived,
        CarrierState::Destroyed => Key::CarrierStateDestroyed,
        CarrierState::InTransfer => Key::CarrierStateInTransfer,
        CarrierState::Dispatched => Key::CarrierStateDispatched,
        CarrierState::Declassified => Key::CarrierStateDeclassified,
    }
}

/// The name of a carrier's state as pages show it: 维修中 while a repair is open (the register
/// keeps `in_storage`: see [`crate::domain::repair::check_available`]), else its state.
pub fn carrier_state_shown(state: CarrierState, in_repair: bool) -> Key {
    if in_repair {
        Key::CarrierStateInRepair
    } else {
        carrier_state(state)
    }
}

/// The name of a request kind.
pub fn request_kind(kind: RequestKind) -> Key {
    match kind {
        RequestKind::Signout => Key::RequestKindSignout,
        RequestKind::Copy => Key::RequestKindCopy,
        RequestKind::Destruction => Key::RequestKindDestruction,
        RequestKind::Transfer => Key::RequestKindTransfer,
        RequestKind::Dispatch => Key::RequestKindDispatch,
        RequestKind::Reclassification => Key::RequestKindReclassification,
        RequestKind::Travel => Key::RequestKindTravel,
    }
}

/// The name of a request state.
pub fn request_state(state: RequestState) -> Key {
    match state {
        RequestState::Requested => Key::RequestStateRequested,
        RequestState::Approved => Key::RequestStateApproved,
        RequestState::Rejected => Key::RequestStateRejected,
        RequestState::Done => Key::RequestStateDone,
    }
}

/// The name of a sign-out state.
pub fn signout_state(state: SignoutState) -> Key {
    match state {
        SignoutState::Requested => Key::SignoutStateRequested,
        SignoutState::Approved => Key::SignoutStateApproved,
        SignoutState::Out => Key::SignoutStateOut,
        SignoutState::Returned => Key::SignoutStateReturned,
        SignoutState::Cancelled => Key::SignoutStateCancelled,
        SignoutState::Rejected => Key::SignoutStateRejected,
    }
}

/// The name of a step in a carrier's history of sign-outs (`requested`, `approved`,
/// `issued`, `returned`, `cancelled`).
pub fn signout_event(event: &str) -> Key {
    match event {
        "requested" => Key::HistRequested,
        "approved" => Key::HistApproved,
        "issued" => Key::HistIssued,
        "returned" => Key::HistReturned,
        "rejected" => Key::HistRejected,
        _ => Key::HistCancelled,
    }
}

/// The name of a person category.
pub fn category(category: Category) -> Key {
    match category {
        Category::Core => Key::CategoryCore,
        Category::Important => Key::CategoryImportant,
        Category::General => Key::CategoryGeneral,
    }
}

/// The name of a person's status.
pub fn person_status(status: PersonStatus) -> Key {
    match status {
        PersonStatus::Active => Key::PersonActive,
        PersonStatus::Leaving => Key::PersonLeavingStatus,
        PersonStatus::Departed => Key::PersonDepartedStatus,
    }
}

/// The reason behind an issue refusal code (`domain::signout::Refusal::code`).
pub fn refusal(code: &str) -> Key {
    match code {
        "person_not_active" => Key::RefusalPersonNotActive,
        "clearance_insufficient" => Key::RefusalClearance,
        "training_expired" => Key::RefusalTraining,
        "commitment_missing" => Key::RefusalCommitment,
        _ => Key::RefusalOther,
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(*k, HeaderValue::from_str(v).unwrap());
        }
        map
    }

    #[test]
    fn every_key_has_two_distinct_non_empty_texts() {
        for key in Key::ALL {
            let (zh, en) = (t(Lang::Zh, *key), t(Lang::En, *key));
            assert!(!zh.trim().is_empty() && !en.trim().is_empty(), "{key:?}");
            assert_ne!(zh, en, "{key:?} is not translated");
            assert!(
                !en.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)),
                "{key:?}: Chinese in the English text"
            );
        }
    }

    #[test]
    fn the_domain_terms_are_used() {
        let zh = |k| t(Lang::Zh, k);
        assert_eq!(zh(level(Level::TopSecret)), "绝密");
        assert_eq!(zh(level(Level::Secret)), "机密");
        assert_eq!(zh(level(Level::Confidential)), "秘密");
        assert_eq!(
            zh(alert_kind(AlertKind::UnauthorizedRemoval)),
            "未经授权带出"
        );
        assert_eq!(zh(alert_kind(AlertKind::Missing)), "查无下落");
        assert_eq!(zh(device_kind(DeviceKind::Cabinet)), "智能柜");
        let roles: Vec<_> = Role::ALL.iter().map(|r| zh(role(*r))).collect();
        assert_eq!(roles, ["管理员", "保密员", "保管员", "警卫", "审计员"]);
        assert!(zh(Key::Carrier).contains("涉密载体"));
        assert!(zh(Key::NavAudit).contains("审计"));
        assert!(zh(Key::GatePassages).contains("门禁"));
    }

    #[test]
    fn every_issue_refusal_code_has_its_own_text() {
        use crate::domain::signout::Refusal;
        let refusals = [
            Refusal::PersonNotActive {
                status: PersonStatus::Leaving,
            },
            Refusal::ClearanceInsufficient {
                needed: Level::TopSecret,
                allowed: Level::Secret,
            },
            Refusal::TrainingExpired { valid_until: None },
            Refusal::CommitmentMissing,
        ];
        let keys: Vec<Key> = refusals.iter().map(|r| refusal(r.code())).collect();
        assert!(!keys.contains(&Key::RefusalOther));
        for (i, k) in keys.iter().enumerate() {
            assert!(!keys[..i].contains(k), "{k:?} repeats");
        }
        assert_eq!(refusal("something_new"), Key::RefusalOther);
        assert_eq!(t(Lang::Zh, category(Category::Core)), "核心涉密人员");
        assert_eq!(
            t(Lang::Zh, carrier_state(CarrierState::Missing)),
            "查无下落"
        );
    }

    #[test]
    fn the_cookie_wins_then_accept_language_then_chinese() {
        assert_eq!(Lang::of(&headers(&[])), Lang::Zh);
        assert_eq!(
            Lang::of(&headers(&[("accept-language", "en-US,en;q=0.9")])),
            Lang::En
        );
        assert_eq!(
            Lang::of(&headers(&[
                ("accept-language", "en-US"),
                ("cookie", "custos_session=x; lang=zh")
            ])),
            Lang::Zh
        );
        assert_eq!(
            Lang::of(&headers(&[
                ("cookie", "lang=fr"),
                ("accept-language", "en")
            ])),
            Lang::En,
            "an unknown cookie value falls through"
        );
        assert_eq!(
            Lang::of(&headers(&[("accept-language", "fr, de;q=0.5")])),
            Lang::Zh
        );
    }

    #[test]
    fn accept_language_weighs_quality_and_order() {
        assert_eq!(
            from_accept_language("zh-CN,zh;q=0.9,en;q=0.8"),
            Some(Lang::Zh)
        );
        assert_eq!(from_accept_language("zh;q=0.5, en;q=0.9"), Some(Lang::En));
        assert_eq!(from_accept_language("en;q=0, zh-TW;q=0.1"), Some(Lang::Zh));
        assert_eq!(from_accept_language("EN-gb, zh"), Some(Lang::En));
        assert_eq!(from_accept_language("en;q=0"), None);
        assert_eq!(from_accept_language("english"), None);
        assert_eq!(from_accept_language("en;q=bogus, zh;q=0.2"), Some(Lang::Zh));
        assert_eq!(quality("0.8"), 800);
        assert_eq!(quality("1"), 1000);
        assert_eq!(quality("1.000"), 1000);
        assert_eq!(quality("0.0001"), 0);
        assert_eq!(quality("2"), 0);
    }
}
