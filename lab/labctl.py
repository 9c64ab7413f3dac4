#!/usr/bin/python3
"""API-side setup of the lab, called by lab/up.

Runs with Debian's /usr/bin/python3 (keystoneclient and keystoneauth1 come
from Debian packages; the pyenv python3 on PATH does not have them).
Secrets arrive in the environment (KURYR_LAB_*_PASSWORD), never in argv.

  labctl.py admin-ok            exit 0 if the admin password works
  labctl.py accounts            projects, roles, users, network endpoints
  labctl.py neutron [--pools] [--wait-agent BINARY HOST SINCE]... [--timeout S]
                  [--delete-agent BINARY HOST]... [--delete-ports-of OWNER]
                  [--delete-admin-networks-since SINCE]
                                subnet pools; wait for agents that reported
                                after SINCE ("YYYY-MM-DD HH:MM:SS" UTC, or "");
                                delete agent records (a stopped agent's) and
                                every port whose device_owner is OWNER; the
                                admin project's networks made after SINCE
                                (a failed fullstack test's) with their ports
"""
import argparse
import os
import sys
import time

from keystoneauth1 import exceptions as ks_exc
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3
from keystoneclient.v3 import client as ks_client

AUTH_URL = os.environ.get("LAB_AUTH_URL", "http://127.0.0.1:5000/v3")
NEUTRON_URL = os.environ.get("LAB_NEUTRON_URL", "http://127.0.0.1:9696")
REGION = "RegionOne"
DOMAIN = "default"

POOLS = [
    # name, prefixes, default_prefixlen
    ("kuryr", ["10.10.0.0/16"], 24),
    ("kuryr6", ["fd10:10::/48"], 64),
]


def say(msg):
    print("lab: " + msg, file=sys.stderr, flush=True)


def pw(who):
    return os.environ["KURYR_LAB_%s_PASSWORD" % who]


def session(user, password, project=None):
    kw = dict(auth_url=AUTH_URL, username=user, password=password,
              user_domain_name="Default")
    if project:
        kw.update(project_name=project, project_domain_name="Default")
    else:
        kw["unscoped"] = True
    return ks_session.Session(auth=v3.Password(**kw))


def password_ok(user, password):
    try:
        session(user, password).get_token()
        return True
    except ks_exc.Unauthorized:
        return False


def admin_session():
    return session("admin", pw("ADMIN"), "admin")


def cmd_admin_ok(_args):
    return 0 if password_ok("admin", pw("ADMIN")) else 1


def cmd_accounts(_args):
    kc = ks_client.Client(session=admin_session(), interface="public",
                          region_name=REGION)

    def project(name, desc):
        found = kc.projects.list(name=name, domain=DOMAIN)
        if found:
            return found[0]
        say("keystone: creating project %s" % name)
        return kc.projects.create(name, DOMAIN, description=desc)

    def role(name):
        found = kc.roles.list(name=name)
        if found:
            return found[0]
        say("keystone: creating role %s" % name)
        return kc.roles.create(name)

    def user(name, password, default_project):
        found = kc.users.list(name=name, domain=DOMAIN)
        if not found:
            say("keystone: creating user %s" % name)
            return kc.users.create(name, domain=DOMAIN, password=password,
                                   default_project=default_project)
        # Only touch the password when it is wrong: setting it revokes
        # every token of that user, including ones held by running services.
        if not password_ok(name, password):
            say("keystone: resetting the password of %s" % name)
            kc.users.update(found[0], password=password)
        return found[0]

    def grant(u, role_names, proj):
        have = {a.role["id"] for a in
                kc.role_assignments.list(user=u, project=proj)}
        for rn in role_names:
            r = roles[rn]
            if r.id not in have:
                say("keystone: granting %s to %s on %s" % (rn, u.name, proj.name))
                kc.roles.grant(r, user=u, project=proj)

    roles = {n: role(n) for n in ("admin", "service", "member", "reader")}
    service = project("service", "OpenStack services (kuryr lab)")
    demo = project("demo", "unprivileged tenant (kuryr lab)")

    grant(user("kuryr", pw("KURYR"), service),
          ["admin", "service", "member", "reader"], service)
    # keystonemiddleware in neutron-server validates tokens as this user.
    grant(user("neutron", pw("NEUTRON"), service), ["admin", "service"], service)
    grant(user("demo", pw("DEMO"), demo), ["member", "reader"], demo)

    svcs = kc.services.list(type="network")
    if svcs:
        svc = svcs[0]
    else:
        say("keystone: creating the network service")
        svc = kc.services.create("neutron", type="network",
                                 description="OpenStack Networking (kuryr lab)")
    for iface in ("public", "internal", "admin"):
        eps = kc.endpoints.list(service=svc, interface=iface, region=REGION)
        if not eps:
            say("keystone: creating %s network endpoint" % iface)
            kc.endpoints.create(svc, NEUTRON_URL, interface=iface, region=REGION)
        elif eps[0].url != NEUTRON_URL:
            say("keystone: fixing %s network endpoint" % iface)
            kc.endpoints.update(eps[0], url=NEUTRON_URL)
    return 0


def neutron_call(sess, method, path, body=None, ok=(200, 201, 204)):
    r = sess.request(NEUTRON_URL + path, method, json=body, raise_exc=False)
    if r.status_code not in ok:
        raise SystemExit("lab: ERROR: %s %s -> %s %s"
                         % (method, path, r.status_code, r.text[:400]))
    return r.json() if r.content else None


def ensure_pools(sess):
    kc = ks_client.Client(session=sess, interface="public", region_name=REGION)
    service = kc.projects.list(name="service", domain=DOMAIN)[0]
    for name, prefixes, plen in POOLS:
        found = neutron_call(sess, "GET", "/v2.0/subnetpools?name=" + name)
        if found["subnetpools"]:
            p = found["subnetpools"][0]
            if sorted(p["prefixes"]) != sorted(prefixes) or not p["shared"]:
                say("neutron: WARNING subnet pool %s exists with prefixes %s "
                    "shared=%s; left as it is" % (name, p["prefixes"], p["shared"]))
            continue
        say("neutron: creating shared subnet pool %s %s" % (name, prefixes))
        neutron_call(sess, "POST", "/v2.0/subnetpools", {"subnetpool": {
            "name": name, "prefixes": prefixes, "default_prefixlen": plen,
            "shared": True, "project_id": service.id,
            "description": "kuryr lab default pool"}})


def wait_agents(sess, wanted, timeout):
    """wanted: list of (binary, host, since). since '' = any start time."""
    deadline = time.monotonic() + timeout
    pending = list(wanted)
    while pending:
        still = []
        for binary, host, since in pending:
            res = neutron_call(sess, "GET", "/v2.0/agents?binary=%s&host=%s"
                               % (binary, host))
            ok = [a for a in res["agents"] if a["alive"]
                  and (a.get("started_at") or "")[:19] >= since]
            if ok:
                say("neutron: %s on %s is alive (started_at %s)"
                    % (binary, host, ok[0]["started_at"]))
            else:
                still.append((binary, host, since))
        pending = still
        if pending:
            if time.monotonic() > deadline:
                raise SystemExit("lab: ERROR: agent(s) not alive after %ss: %s"
                                 % (timeout, ", ".join("%s@%s" % p[:2] for p in pending)))
            time.sleep(1)
    return 0


def delete_agents(sess, unwanted):
    for binary, host in unwanted:
        res = neutron_call(sess, "GET", "/v2.0/agents?binary=%s&host=%s"
                           % (binary, host))
        for a in res["agents"]:
            neutron_call(sess, "DELETE", "/v2.0/agents/" + a["id"],
                         ok=(204, 404))
            say("neutron: deleted the record of %s on %s" % (binary, host))


def delete_ports_of(sess, owner):
    res = neutron_call(sess, "GET", "/v2.0/ports?device_owner=" + owner)
    for p in res["ports"]:
        neutron_call(sess, "DELETE", "/v2.0/ports/" + p["id"], ok=(204, 404))
    if res["ports"]:
        say("neutron: deleted %d %s port(s)" % (len(res["ports"]), owner))


def delete_admin_networks_since(sess, since):
    project = sess.get_project_id()
    res = neutron_call(sess, "GET", "/v2.0/networks?project_id=" + project)
    for n in res["networks"]:
        if (n.get("created_at") or "").replace("T", " ")[:19] < since:
            continue
        ports = neutron_call(sess, "GET", "/v2.0/ports?network_id=" + n["id"])
        for p in ports["ports"]:
            neutron_call(sess, "DELETE", "/v2.0/ports/" + p["id"], ok=(204, 404))
        neutron_call(sess, "DELETE", "/v2.0/networks/" + n["id"], ok=(204, 404))
        say("neutron: deleted network %s (%s), made %s"
            % (n["id"], n["name"], n["created_at"]))


def cmd_neutron(args):
    sess = admin_session()
    if args.delete_agent:
        delete_agents(sess, [tuple(d) for d in args.delete_agent])
    if args.delete_ports_of:
        delete_ports_of(sess, args.delete_ports_of)
    if args.delete_admin_networks_since:
        delete_admin_networks_since(sess, args.delete_admin_networks_since)
    if args.pools:
        ensure_pools(sess)
    if args.wait_agent:
        wait_agents(sess, [tuple(w) for w in args.wait_agent], args.timeout)
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("admin-ok").set_defaults(fn=cmd_admin_ok)
    sub.add_parser("accounts").set_defaults(fn=cmd_accounts)
    n = sub.add_parser("neutron")
    n.add_argument("--pools", action="store_true")
    n.add_argument("--wait-agent", nargs=3, action="append",
                   metavar=("BINARY", "HOST", "SINCE"))
    n.add_argument("--delete-agent", nargs=2, action="append",
                   metavar=("BINARY", "HOST"))
    n.add_argument("--delete-ports-of", metavar="OWNER")
    n.add_argument("--delete-admin-networks-since", metavar="SINCE")
    n.add_argument("--timeout", type=float, default=120)
    n.set_defaults(fn=cmd_neutron)
    args = ap.parse_args()
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
