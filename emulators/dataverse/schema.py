"""The tables the emulator knows: columns with Edm types, lookups, state/status rules."""

from __future__ import annotations

from dataclasses import dataclass, field

# Edm types the query parser checks operands against.
STRING, GUID, INT, BOOL, DATETIME, DECIMAL = (
    "Edm.String",
    "Edm.Guid",
    "Edm.Int32",
    "Edm.Boolean",
    "Edm.DateTimeOffset",
    "Edm.Decimal",
)


@dataclass(frozen=True)
class Column:
    """A column. `writable=False` columns are silently ignored on write, as Dataverse does
    for attributes with IsValidForCreate/IsValidForUpdate false (createdon, fullname, ...)."""

    name: str
    edm: str
    writable: bool = True
    max_length: int | None = None
    custom: bool = False
    metadata_type: str = ""  # e.g. "String", "DateTime", "Integer" (AttributeType)


@dataclass(frozen=True)
class Lookup:
    """A lookup column: read as `_<name>_value`, written through `<nav>@odata.bind`.

    `navs` maps each navigation property to the table it points at (a polymorphic lookup such
    as regardingobjectid has one navigation property per target table).
    """

    name: str
    navs: dict[str, str]
    # Further tables one navigation property also accepts: ownerid is a principal, so
    # `ownerid@odata.bind` takes /systemusers(...) or /teams(...).
    also: tuple[str, ...] = ()

    @property
    def value_column(self) -> str:
        return f"_{self.name}_value"


@dataclass(frozen=True)
class StateModel:
    """Valid statuscode values per statecode, and the default statuscode of each state."""

    statuses: dict[int, tuple[int, ...]]
    state_names: dict[int, str]

    def default_status(self, state: int) -> int:
        return self.statuses[state][0]


@dataclass
class Table:
    logical_name: str
    entity_set: str
    primary_id: str
    primary_name: str
    columns: dict[str, Column]
    lookups: dict[str, Lookup] = field(default_factory=dict)
    collections: dict[str, tuple[str, str]] = field(default_factory=dict)  # nav -> (set, fk)
    state: StateModel | None = None
    activity: bool = False
    object_type_code: int = 0
    owned: bool = True

    @property
    def edm_type(self) -> str:
        return f"Microsoft.Dynamics.CRM.{self.logical_name}"

    def nav_target(self, nav: str) -> tuple[Lookup, str] | None:
        for lookup in self.lookups.values():
            if nav in lookup.navs:
                return lookup, lookup.navs[nav]
        return None

    def lookup_by_value_column(self, name: str) -> Lookup | None:
        for lookup in self.lookups.values():
            if lookup.value_column == name:
                return lookup
        return None

    def readable(self, name: str) -> bool:
        return name in self.columns or self.lookup_by_value_column(name) is not None


def _cols(*specs: tuple[str, str] | tuple[str, str, int] | Column) -> dict[str, Column]:
    out: dict[str, Column] = {}
    for spec in specs:
        if isinstance(spec, Column):
            out[spec.name] = spec
        elif len(spec) == 3:
            out[spec[0]] = Column(spec[0], spec[1], max_length=spec[2])
        else:
            out[spec[0]] = Column(spec[0], spec[1])
    return out


def _ro(name: str, edm: str) -> Column:
    return Column(name, edm, writable=False)


_AUDIT = (
    _ro("createdon", DATETIME),
    _ro("modifiedon", DATETIME),
    _ro("versionnumber", INT),
    Column("overriddencreatedon", DATETIME),
)
_AUDIT_LOOKUPS = {
    "createdby": Lookup("createdby", {"createdby": "systemuser"}),
    "modifiedby": Lookup("modifiedby", {"modifiedby": "systemuser"}),
}
_OWNER = {"ownerid": Lookup("ownerid", {"ownerid": "systemuser"}, also=("team",))}
_ACTIVE_INACTIVE = StateModel({0: (1,), 1: (2,)}, {0: "Active", 1: "Inactive"})


def base_tables() -> dict[str, Table]:
    """A fresh copy of the built-in tables (custom columns are added to these per emulator)."""
    tables = [
        Table(
            "contact",
            "contacts",
            "contactid",
            "fullname",
            _cols(
                ("contactid", GUID),
                ("firstname", STRING, 50),
                ("lastname", STRING, 50),
                ("middlename", STRING, 50),
                _ro("fullname", STRING),
                ("jobtitle", STRING, 100),
                ("emailaddress1", STRING, 100),
                ("emailaddress2", STRING, 100),
                ("telephone1", STRING, 50),
                ("telephone2", STRING, 50),
                ("telephone3", STRING, 50),
                ("mobilephone", STRING, 50),
                ("business2", STRING, 50),
                ("home2", STRING, 50),
                ("pager", STRING, 50),
                ("callback", STRING, 50),
                ("company", STRING, 50),
                ("assistantphone", STRING, 50),
                ("managerphone", STRING, 50),
                ("fax", STRING, 50),
                ("address1_city", STRING, 80),
                ("address1_country", STRING, 80),
                ("description", STRING, 2000),
                ("preferredcontactmethodcode", INT),
                ("donotphone", BOOL),
                ("statecode", INT),
                ("statuscode", INT),
                *_AUDIT,
            ),
            {
                "parentcustomerid": Lookup(
                    "parentcustomerid",
                    {"parentcustomerid_account": "account", "parentcustomerid_contact": "contact"},
                ),
                **_OWNER,
                **_AUDIT_LOOKUPS,
            },
            state=_ACTIVE_INACTIVE,
            object_type_code=2,
        ),
        Table(
            "account",
            "accounts",
            "accountid",
            "name",
            _cols(
                ("accountid", GUID),
                ("name", STRING, 160),
                ("accountnumber", STRING, 20),
                ("emailaddress1", STRING, 100),
                ("telephone1", STRING, 50),
                ("telephone2", STRING, 50),
                ("telephone3", STRING, 50),
                ("fax", STRING, 50),
                ("websiteurl", STRING, 200),
                ("address1_city", STRING, 80),
                ("address1_country", STRING, 80),
                ("description", STRING, 2000),
                ("donotphone", BOOL),
                ("statecode", INT),
                ("statuscode", INT),
                *_AUDIT,
            ),
            {
                "primarycontactid": Lookup("primarycontactid", {"primarycontactid": "contact"}),
                "parentaccountid": Lookup("parentaccountid", {"parentaccountid": "account"}),
                **_OWNER,
                **_AUDIT_LOOKUPS,
            },
            state=_ACTIVE_INACTIVE,
            object_type_code=1,
        ),
        Table(
            "lead",
            "leads",
            "leadid",
            "fullname",
            _cols(
                ("leadid", GUID),
                ("subject", STRING, 300),
                ("firstname", STRING, 50),
                ("lastname", STRING, 50),
                _ro("fullname", STRING),
                ("companyname", STRING, 100),
                ("jobtitle", STRING, 100),
                ("emailaddress1", STRING, 100),
                ("telephone1", STRING, 50),
                ("telephone2", STRING, 50),
                ("telephone3", STRING, 50),
                ("mobilephone", STRING, 50),
                ("description", STRING, 2000),
                ("statecode", INT),
                ("statuscode", INT),
                *_AUDIT,
            ),
            {
                "parentcontactid": Lookup("parentcontactid", {"parentcontactid": "contact"}),
                "parentaccountid": Lookup("parentaccountid", {"parentaccountid": "account"}),
                **_OWNER,
                **_AUDIT_LOOKUPS,
            },
            state=StateModel(
                {0: (1, 2), 1: (3,), 2: (4, 5, 6, 7)},
                {0: "Open", 1: "Qualified", 2: "Disqualified"},
            ),
            object_type_code=4,
        ),
        Table(
            "systemuser",
            "systemusers",
            "systemuserid",
            "fullname",
            _cols(
                ("systemuserid", GUID),
                ("firstname", STRING, 64),
                ("lastname", STRING, 64),
                _ro("fullname", STRING),
                ("internalemailaddress", STRING, 100),
                ("domainname", STRING, 1024),
                ("azureactivedirectoryobjectid", GUID),
                ("applicationid", GUID),
                ("isdisabled", BOOL),
                ("accessmode", INT),
                ("title", STRING, 128),
                ("mobilephone", STRING, 64),
                ("address1_telephone1", STRING, 64),
                ("address1_telephone2", STRING, 50),
                ("address1_telephone3", STRING, 50),
                ("homephone", STRING, 50),
                *_AUDIT,
            ),
            {**_AUDIT_LOOKUPS},
            object_type_code=8,
            owned=False,
        ),
        Table(
            "team",
            "teams",
            "teamid",
            "name",
            _cols(
                ("teamid", GUID),
                ("name", STRING, 160),
                ("teamtype", INT),  # 0 Owner, 1 Access, 2 Security group, 3 Office group
                ("azureactivedirectoryobjectid", GUID),
                ("description", STRING, 2000),
                ("emailaddress", STRING, 100),
                *_AUDIT,
            ),
            {**_AUDIT_LOOKUPS},
            object_type_code=9,
            owned=False,
        ),
        Table(
            "phonecall",
            "phonecalls",
            "activityid",
            "subject",
            _cols(
                ("activityid", GUID),
                ("subject", STRING, 200),
                ("description", STRING, 2000),
                ("phonenumber", STRING, 200),
                ("directioncode", BOOL),
                ("actualstart", DATETIME),
                ("actualend", DATETIME),
                ("actualdurationminutes", INT),
                ("scheduledstart", DATETIME),
                ("scheduledend", DATETIME),
                ("scheduleddurationminutes", INT),
                ("leftvoicemail", BOOL),
                ("category", STRING, 250),
                ("subcategory", STRING, 250),
                ("prioritycode", INT),
                _ro("activitytypecode", STRING),
                ("statecode", INT),
                ("statuscode", INT),
                *_AUDIT,
            ),
            {
                "regardingobjectid": Lookup(
                    "regardingobjectid",
                    {
                        "regardingobjectid_contact_phonecall": "contact",
                        "regardingobjectid_account_phonecall": "account",
                        "regardingobjectid_lead_phonecall": "lead",
                        "regardingobjectid_incident_phonecall": "incident",
                    },
                ),
                **_OWNER,
                **_AUDIT_LOOKUPS,
            },
            collections={"phonecall_activity_parties": ("activityparties", "_activityid_value")},
            state=StateModel(
                {0: (1,), 1: (2, 4), 2: (3,)}, {0: "Open", 1: "Completed", 2: "Canceled"}
            ),
            activity=True,
            object_type_code=4210,
        ),
        Table(
            # A case. customerid is required on create (a contact or an account); ticketnumber
            # is generated when not given (auto-number, CAS-01001-A1B2C3).
            "incident",
            "incidents",
            "incidentid",
            "title",
            _cols(
                ("incidentid", GUID),
                ("title", STRING, 200),
                ("ticketnumber", STRING, 100),
                ("description", STRING, 2000),
                ("caseorigincode", INT),  # 1 Phone, 2 Email, 3 Web
                ("prioritycode", INT),
                ("casetypecode", INT),
                ("statecode", INT),
                ("statuscode", INT),
                *_AUDIT,
            ),
            {
                "customerid": Lookup(
                    "customerid",
                    {"customerid_contact": "contact", "customerid_account": "account"},
                ),
                "primarycontactid": Lookup("primarycontactid", {"primarycontactid": "contact"}),
                **_OWNER,
                **_AUDIT_LOOKUPS,
            },
            state=StateModel(
                {0: (1, 2, 3, 4), 1: (5, 1000), 2: (6, 2000)},
                {0: "Active", 1: "Resolved", 2: "Cancelled"},
            ),
            object_type_code=112,
        ),
        Table(
            "activityparty",
            "activityparties",
            "activitypartyid",
            "partyid",
            _cols(
                ("activitypartyid", GUID),
                ("participationtypemask", INT),
                ("addressused", STRING, 320),
                _ro("ispartydeleted", BOOL),
            ),
            {
                "partyid": Lookup(
                    "partyid",
                    {
                        "partyid_contact": "contact",
                        "partyid_account": "account",
                        "partyid_lead": "lead",
                        "partyid_systemuser": "systemuser",
                    },
                ),
                "activityid": Lookup("activityid", {"activityid_phonecall": "phonecall"}),
            },
            object_type_code=135,
            owned=False,
        ),
        Table(
            "queue",
            "queues",
            "queueid",
            "name",
            _cols(
                ("queueid", GUID),
                ("name", STRING, 400),
                ("emailaddress", STRING, 100),
                ("description", STRING, 2000),
                ("queueviewtype", INT),
                ("statecode", INT),
                ("statuscode", INT),
                *_AUDIT,
            ),
            {**_OWNER, **_AUDIT_LOOKUPS},
            state=_ACTIVE_INACTIVE,
            object_type_code=2020,
        ),
        Table(
            "queueitem",
            "queueitems",
            "queueitemid",
            "title",
            _cols(
                ("queueitemid", GUID),
                ("title", STRING, 300),
                ("objecttypecode", INT),
                ("enteredon", DATETIME),
                ("statecode", INT),
                ("statuscode", INT),
                *_AUDIT,
            ),
            {
                "queueid": Lookup("queueid", {"queueid": "queue"}),
                "objectid": Lookup("objectid", {"objectid_phonecall": "phonecall"}),
                "workerid": Lookup("workerid", {"workerid_systemuser": "systemuser"}),
                **_OWNER,
                **_AUDIT_LOOKUPS,
            },
            state=_ACTIVE_INACTIVE,
            object_type_code=2029,
        ),
        Table(
            # A note (Notes on the timeline). `objecttypecode` is the logical name of the record
            # it is attached to, set by Dataverse from `objectid`.
            "annotation",
            "annotations",
            "annotationid",
            "subject",
            _cols(
                ("annotationid", GUID),
                ("subject", STRING, 500),
                ("notetext", STRING, 100_000),
                ("isdocument", BOOL),
                ("filename", STRING, 255),
                ("mimetype", STRING, 256),
                ("documentbody", STRING, 1_073_741_823),
                _ro("filesize", INT),
                ("langid", STRING, 2),
                ("objecttypecode", STRING),
                *_AUDIT,
            ),
            {
                "objectid": Lookup(
                    "objectid",
                    {
                        "objectid_phonecall": "phonecall",
                        "objectid_contact": "contact",
                        "objectid_account": "account",
                        "objectid_lead": "lead",
                        "objectid_incident": "incident",
                    },
                ),
                **_OWNER,
                **_AUDIT_LOOKUPS,
            },
            object_type_code=5,
        ),
        *_setup_tables(),
    ]
    return {t.logical_name: t for t in tables}


def _setup_tables() -> list[Table]:
    """What `make d365-setup` writes: security roles and their privileges, the business unit a
    role belongs to, and the channel providers of Channel Integration Framework 1.0 and 2.0
    (the CIF solutions add those two tables to an org; Microsoft's entity references name them)."""
    return [
        Table(
            "businessunit",
            "businessunits",
            "businessunitid",
            "name",
            _cols(("businessunitid", GUID), ("name", STRING, 160), *_AUDIT),
            {
                "parentbusinessunitid": Lookup(
                    "parentbusinessunitid", {"parentbusinessunitid": "businessunit"}
                ),
                **_AUDIT_LOOKUPS,
            },
            object_type_code=10,
            owned=False,
        ),
        Table(
            "role",
            "roles",
            "roleid",
            "name",
            _cols(("roleid", GUID), ("name", STRING, 100), ("description", STRING, 2000), *_AUDIT),
            {
                "businessunitid": Lookup("businessunitid", {"businessunitid": "businessunit"}),
                **_AUDIT_LOOKUPS,
            },
            object_type_code=1036,
            owned=False,
        ),
        Table(
            "privilege",
            "privileges",
            "privilegeid",
            "name",
            _cols(
                ("privilegeid", GUID),
                _ro("name", STRING),
                _ro("accessright", INT),
                _ro("canbebasic", BOOL),
                _ro("canbelocal", BOOL),
                _ro("canbedeep", BOOL),
                _ro("canbeglobal", BOOL),
            ),
            object_type_code=1023,
            owned=False,
        ),
        Table(
            "msdyn_ciprovider",
            "msdyn_ciproviders",
            "msdyn_ciproviderid",
            "msdyn_name",
            _cols(
                ("msdyn_ciproviderid", GUID),
                ("msdyn_name", STRING, 100),
                ("msdyn_label", STRING, 100),
                ("msdyn_landingurl", STRING, 2000),
                ("msdyn_clicktoact", BOOL),
                ("msdyn_sortorder", INT),
                ("msdyn_ciproviderapiversion", INT),
                ("msdyn_trusteddomain", STRING, 2000),
                ("msdyn_customparams", STRING, 10000),
                ("statecode", INT),
                ("statuscode", INT),
                *_AUDIT,
            ),
            {**_OWNER, **_AUDIT_LOOKUPS},
            state=_ACTIVE_INACTIVE,
            object_type_code=10001,
        ),
        Table(
            "msdyn_channelprovider",
            "msdyn_channelproviders",
            "msdyn_channelproviderid",
            "msdyn_name",
            _cols(
                ("msdyn_channelproviderid", GUID),
                ("msdyn_name", STRING, 100),
                ("msdyn_uniquename", STRING, 100),
                ("msdyn_label", STRING, 100),
                ("msdyn_landingurl", STRING, 2000),
                ("msdyn_enableoutbound", BOOL),
                ("msdyn_enableanalytics", BOOL),
                ("msdyn_sortorder", INT),
                ("msdyn_apiversion", INT),
                ("msdyn_trusteddomain", STRING, 2000),
                ("msdyn_customparams", STRING, 10000),
                ("statecode", INT),
                ("statuscode", INT),
                *_AUDIT,
            ),
            {**_OWNER, **_AUDIT_LOOKUPS},
            state=_ACTIVE_INACTIVE,
            object_type_code=10002,
        ),
    ]


# Privileges every org has (a subset, by name).
# Phone Call is an activity: its rights are the Activity privileges. The ids differ per org in
# the emulator (uuid5 of the name) as they may in a real one; look them up by name.
PRIVILEGES = (
    *(
        f"prv{verb}{entity}"
        for entity in ("Contact", "Account", "Lead", "Activity", "Note", "Queue", "QueueItem")
        for verb in ("Create", "Read", "Write", "Delete", "Append", "AppendTo", "Assign", "Share")
    ),
    "prvReadUser",
    "prvReadBusinessUnit",
    "prvReadmsdyn_ciprovider",
    "prvReadmsdyn_channelprovider",
)


# Columns Dataverse fills itself; writes to them are ignored (IsValidForCreate/Update false).
SYSTEM_COLUMNS = frozenset({"createdon", "modifiedon", "versionnumber"})
