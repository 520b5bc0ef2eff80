"""What the common parts of every protocol dialect share: the logical steps of a session and
how a dialect names and builds them.

A *step* is a request/response pair in protocol-neutral words (``"Authorization"``,
``"ChargeLoop"``, …); each dialect (din.py, iso2.py, iso20.py) maps it to its own message names
(DIN ContractAuthentication, ISO 15118-2 Authorization; DIN / ISO-2 CurrentDemand and
ChargingStatus, -20 DC_ChargeLoop / AC_ChargeLoop) and builds the decoded trees
(docs/architecture.md) from the session state :class:`ccs_analyzer.samples.flow.State`.
Builders are methods ``req_<Step>(s)`` and ``res_<Step>(s)``.
"""
from __future__ import annotations

from ccs_analyzer.dissectors.exi.namespaces import NS_APP_PROTOCOL as NS_SAP

STEPS = ("SessionSetup", "AuthorizationSetup", "ServiceDiscovery", "ServiceDetail",
         "PaymentSelection", "PaymentDetails", "Authorization", "ChargeParameterDiscovery",
         "ScheduleExchange", "CableCheck", "PreCharge", "PowerDelivery", "ChargeLoop",
         "MeteringReceipt", "WeldingDetection", "SessionStop")


class Dialect:
    """Base class: ``protocol`` (the analyzer's protocol name), ``namespace`` (EXI schema),
    ``sap_entry`` (the AppProtocol entry of supportedAppProtocolReq), ``names`` (step →
    message base name), ``setup`` (the steps between SessionSetup and
    ChargeParameterDiscovery, in order)."""

    protocol = ""
    namespace = ""
    mode = "DC"
    major = 2
    minor = 0
    names: dict[str, str] = {}
    setup: tuple[str, ...] = ()
    #: ISO 15118-2 Plug & Charge: install the contract with CertificateInstallation first
    certificate_installation: bool = False
    #: ISO 15118-2 Plug & Charge: ChargeParameterDiscoveryRes carries a signed SalesTariff
    signed_sales_tariff: bool = False

    def __init__(self, mode: str = "DC", payment: str = "EIM", control_mode: str = "Scheduled"):
        self.mode = mode
        self.payment = payment
        self.control_mode = control_mode

    # ------------------------------------------------------------ names
    def name(self, step: str) -> str:
        """Message base name of ``step`` in this protocol."""
        return self.names.get(step, step)

    def step_of(self, message: str) -> str:
        """The step a message name (``"PowerDeliveryReq"``, ``"CurrentDemand"``) belongs to."""
        base = message[:-3] if message.endswith(("Req", "Res")) else message
        for step, n in self.names.items():
            if n == base:
                return step
        if base in STEPS:
            return base
        raise LookupError(f"{message} is not a message of {self.protocol}")

    def namespace_of(self, step: str) -> str:
        return self.namespace

    def payload_type(self, step: str) -> int:
        return 0x8001

    def sap_entry(self, schema_id: int, priority: int) -> dict:
        return {"ProtocolNamespace": self.sap_namespace, "VersionNumberMajor": self.major,
                "VersionNumberMinor": self.minor, "SchemaID": schema_id, "Priority": priority}

    @property
    def sap_namespace(self) -> str:
        return self.namespace

    # ------------------------------------------------------------ trees
    def request(self, step: str, s) -> dict:
        return getattr(self, f"req_{step}")(s)

    def response(self, step: str, s) -> dict:
        return getattr(self, f"res_{step}")(s)

    def has(self, step: str) -> bool:
        return hasattr(self, f"req_{step}")


def dialect_for(protocol: str, mode: str, payment: str, control_mode: str = "Scheduled") -> Dialect:
    """The dialect of ``protocol`` ("DIN 70121", "ISO 15118-2", "ISO 15118-20")."""
    from .din import DinDialect
    from .iso2 import Iso2Dialect
    from .iso20 import Iso20Dialect
    table = {"DIN 70121": DinDialect, "ISO 15118-2": Iso2Dialect, "ISO 15118-20": Iso20Dialect}
    if protocol not in table:
        raise ValueError(f"unknown protocol {protocol!r}; one of {', '.join(table)}")
    return table[protocol](mode=mode, payment=payment, control_mode=control_mode)
