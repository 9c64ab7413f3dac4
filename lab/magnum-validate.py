#!/usr/bin/python3
"""Magnum's own cluster-template validation, run on a corpus of templates.

Why this exists: `kuryr template validate` says it applies Magnum's rules.
The differential test (crates/kuryr/tests/template_magnum.rs) holds it to
that by asking Magnum itself: this script runs the code Magnum runs on
`POST /v1/clustertemplates` -- WSME's parsing of the JSON body
(`wsme.rest.args.get_args`, as `wsmeext.pecan.wsexpose` calls it), the create
decorators of `ClusterTemplatesController.post` (server type, network driver,
volume driver, volume size, driver lookup) and `post` itself with
`attr_validator` -- from Debian's python3-magnum (15.0.1, Zed), with no API
server and no database. What is faked:

- the cloud look-ups: every image exists with `os_distro` fedora-atomic (the
  only distro Magnum has Swarm drivers for), every flavor and keypair
  exists, every external network name matches exactly one network;
- the request context and policy (an admin who may publish templates);
- the database write (`ClusterTemplate.create` records the object instead);
- `kuryr` is added to `SwarmValidator.supported_network_drivers`, as the
  Kuryr blueprint would have, and the operator's
  `swarm_allowed_network_drivers` / `swarm_default_network_driver` are taken
  from each case.

Input (stdin): a JSON array of cases
  {"name": "...", "template": <any JSON> | "body": "<raw text>",
   "policy": {"allowed": [...], "default": "..."}}   (policy optional)
Output (stdout): one JSON line per case:
  {"name", "verdict": "accept"|"refuse"|"crash", "field", "message",
   "stored": {...}}
`field` names the attribute Magnum refused (`labels/swarm_strategy` for a
label); `stored` is what Magnum would have written (accepted templates).
A `crash` is an exception Magnum does not turn into a 4xx: the API answers
500 and creates nothing.
"""

import json
import logging
import sys
import traceback
import types
import warnings

try:
    import pecan
    import pecan.core
    import webob.multidict
    import wsme
    import wsme.api
    import wsme.exc
    import wsme.rest.args
    import wsme.rest.json
    import wsme.types

    from magnum.api import attr_validator
    from magnum.api import validation
    from magnum.api.controllers.v1 import cluster_template as ct_api
    from magnum.common import clients
    from magnum.common import exception
    from magnum.common import policy
    from magnum.drivers.common import driver as magnum_driver
    from magnum import objects
except ImportError as e:  # pragma: no cover - the Rust test reports it
    sys.stderr.write(
        "magnum-validate: cannot import Magnum (%s); install Debian's "
        "python3-magnum: apt-get install --no-install-recommends "
        "python3-magnum (lab/up does it)\n" % e)
    sys.exit(3)

warnings.simplefilter("ignore")
logging.disable(logging.CRITICAL)

FAKE_OS_DISTRO = "fedora-atomic"


# --- fakes: cloud look-ups, context, policy, database ------------------------

class _Image(dict):
    pass


class _Images:
    def get(self, ident):
        return _Image(id=ident, name=ident, os_distro=FAKE_OS_DISTRO)

    def list(self, filters=None):
        name = (filters or {}).get("name")
        if name is None:  # no name: nothing matches
            return []
        return [_Image(id="00000000-0000-0000-0000-00000000000a", name=name,
                       os_distro=FAKE_OS_DISTRO)]


class _Flavor:
    def __init__(self, name):
        self.name = name
        self.id = name


class _Flavors:
    def __init__(self, wanted):
        self.wanted = wanted

    def list(self):
        return [_Flavor(w) for w in self.wanted]


class _Nova:
    def __init__(self, wanted):
        self.flavors = _Flavors(wanted)
        self.keypairs = types.SimpleNamespace(get=lambda k: k)


class _Neutron:
    def __init__(self, wanted):
        self.wanted = wanted

    def list_networks(self, **_filters):
        return {"networks": [{"name": w, "id": w} for w in self.wanted]}


class FakeClients:
    """Every resource a template names exists, once."""

    current = {}

    def __init__(self, _context):
        pass

    def glance(self):
        return types.SimpleNamespace(images=_Images())

    def nova(self):
        t = FakeClients.current
        wanted = [t.get(k) for k in ("flavor_id", "master_flavor_id")]
        return _Nova([w for w in wanted if w is not None])

    def neutron(self):
        ext = FakeClients.current.get("external_network_id")
        return _Neutron([ext] if ext is not None else [])


clients.OpenStackClients = FakeClients
policy.enforce = lambda *a, **k: True

STORED = {}


def _fake_create(self, context=None):
    STORED.clear()
    for field in ("name", "coe", "network_driver", "labels", "fixed_network",
                  "fixed_subnet", "external_network_id", "dns_nameserver",
                  "tls_disabled", "volume_driver", "server_type",
                  "docker_storage_driver", "docker_volume_size", "image_id",
                  "cluster_distro", "public", "hidden", "registry_enabled",
                  "master_lb_enabled", "floating_ip_enabled", "apiserver_port",
                  "tags"):
        if self.obj_attr_is_set(field):
            STORED[field] = getattr(self, field)
    self.uuid = "00000000-0000-0000-0000-0000000000c7"
    self.id = 1


objects.ClusterTemplate.create = _fake_create
ct_api.link.build_url = lambda *a, **k: "http://magnum.invalid/"

validation.SwarmValidator.supported_network_drivers = [
    "docker", "flannel", "kuryr"]


# --- which field a refusal is about ------------------------------------------

STEP = {"field": None}


def _tracked(field_of, fn):
    def wrapper(*args, **kwargs):
        STEP["field"] = field_of(*args, **kwargs)
        return fn(*args, **kwargs)
    return wrapper


def _cluster_type_field(server_type, os_distro, coe):
    """A refused (server_type, os, coe): blame server_type when no driver
    serves that server type for the COE at all, else the distro -- the
    image's when the template names none and the image look-up found none
    (os is then unset)."""
    known = magnum_driver.Driver.get_drivers()
    if not isinstance(os_distro, str):
        return "image_id"
    if not any(s == server_type and c == coe for (s, _o, c) in known):
        return "server_type"
    return "cluster_distro"


V = validation.Validator
V.get_coe_validator = classmethod(
    _tracked(lambda cls, coe: "coe", V.get_coe_validator.__func__))
V.validate_server_type = classmethod(
    _tracked(lambda cls, s: "server_type", V.validate_server_type.__func__))
V.validate_network_driver = classmethod(
    _tracked(lambda cls, d: "network_driver",
             V.validate_network_driver.__func__))
V.validate_volume_driver = classmethod(
    _tracked(lambda cls, d: "volume_driver",
             V.validate_volume_driver.__func__))
validation._enforce_volume_storage_size = _tracked(
    lambda ct, c: "docker_volume_size",
    validation._enforce_volume_storage_size)
_get_driver = magnum_driver.Driver.get_driver.__func__
magnum_driver.Driver.get_driver = classmethod(
    _tracked(lambda cls, s, o, c: _cluster_type_field(s, o, c), _get_driver))
for _attr in list(attr_validator.validators):
    _fn = attr_validator.validators[_attr]
    attr_validator.validators[_attr] = _tracked(
        (lambda a: lambda *args, **kw: a)(_attr), _fn)
_validate_os_resources = attr_validator.validate_os_resources


def _os_resources_then_untracked(*args, **kwargs):
    _validate_os_resources(*args, **kwargs)
    STEP["field"] = None  # what follows (the stored object) is no step


attr_validator.validate_os_resources = _os_resources_then_untracked
for _label in list(attr_validator.labels_validators):
    _fn = attr_validator.labels_validators[_label]
    attr_validator.labels_validators[_label] = _tracked(
        (lambda a: lambda *args, **kw: "labels/" + a)(_label), _fn)


def _parse_field(exc, data):
    """The attribute a WSME parsing error is about. WSME names it for most
    errors; a value its type cannot convert is reported against the whole
    body (`cluster_template`), so each attribute is then parsed alone, in
    WSME's order, and the first that fails is the one."""
    if isinstance(exc, wsme.exc.UnknownAttribute):
        return sorted(exc.attributes)[0]
    name = getattr(exc, "fieldname", None)
    if name and name != "cluster_template":
        return name
    if not isinstance(data, dict):
        return ""
    for attrdef in wsme.types.list_attributes(ct_api.ClusterTemplate):
        if attrdef.name not in data:
            continue
        probe = ct_api.ClusterTemplate()
        try:
            value = wsme.rest.json.fromjson(attrdef.datatype,
                                            data[attrdef.name])
            setattr(probe, attrdef.key, value)
        except Exception:
            return attrdef.name
    return ""


def _is_client_error(exc):
    code = getattr(exc, "code", None)
    return isinstance(code, int) and 400 <= code < 500


def _jsonable(value):
    return json.loads(json.dumps(value, default=str))


# --- one case -------------------------------------------------------------

def run_case(case):
    body = case.get("body")
    if body is None:
        body = json.dumps(case.get("template"))
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    pol = case.get("policy") or {}
    validation.SwarmValidator.allowed_network_drivers = list(
        pol.get("allowed", ["all"]))
    validation.SwarmValidator.default_network_driver = pol.get(
        "default", "docker")
    FakeClients.current = data if isinstance(data, dict) else {}

    context = types.SimpleNamespace(is_admin=False, project_id="p",
                                    user_id="u", all_tenants=False)
    request = types.SimpleNamespace(
        params=webob.multidict.MultiDict(), body=body.encode("utf-8"),
        content_type="application/json", context=context,
        host_url="http://magnum.invalid", pecan={})
    pecan.core.state = types.SimpleNamespace(
        request=request,
        response=types.SimpleNamespace(status=None, location=None))

    post = ct_api.ClusterTemplatesController.post
    funcdef = post._wsme_definition
    STORED.clear()
    STEP["field"] = None
    parsed = False
    # What wsexpose's callfunction does: parse the body, call the decorated
    # post, and turn an exception into a client fault only when it carries
    # a 4xx code and can be formatted.
    try:
        args, kwargs = wsme.rest.args.get_args(
            funcdef, (), {}, request.params, None, request.body,
            request.content_type)
        parsed = True
        post.__wrapped__(ct_api.ClusterTemplatesController(), *args, **kwargs)
    except Exception as e:
        field = STEP["field"] if parsed else _parse_field(e, data)
        return _fault(e, field or "")
    return {"verdict": "accept", "field": "", "message": "",
            "stored": _jsonable(STORED)}


def _fault(exc, field):
    try:
        fault = wsme.api.format_exception(
            (type(exc), exc, exc.__traceback__))
    except Exception as e2:
        return {"verdict": "crash", "field": field,
                "message": "%s (%s), whose message fails to format: %s" % (
                    type(exc).__name__, getattr(exc, "code", None),
                    type(e2).__name__),
                "where": _where(exc)}
    if _is_client_error(exc):
        return {"verdict": "refuse", "field": field,
                "message": fault["faultstring"]}
    return {"verdict": "crash", "field": field,
            "message": "%s: %s" % (type(exc).__name__, fault["faultstring"]),
            "where": _where(exc)}


def _where(exc):
    return traceback.extract_tb(exc.__traceback__)[-1].name


def main():
    cases = json.load(sys.stdin)
    for case in cases:
        result = {"name": case.get("name", "")}
        result.update(run_case(case))
        sys.stdout.write(json.dumps(result, sort_keys=True) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
