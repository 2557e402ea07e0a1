/* loomctl.c - the administrator's command line: global flags and dispatch. */
#include "loomctl.h"
#include "loom_alloc.h"
#include "loom_buf.h"
#include "loom_envelope.h"
#include "loom_pbfmt.h"
#include "loom_config.h"
#include "loom_daemon.h"
#include "loom_log.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

const ctl_cmd_t ctl_cmds[] = {
	{ "ping", "SERVICE [-n COUNT] [-i INTERVAL] [--wait DURATION] [--probe]",
	  "round trip to a service (or instance) through the broker, with latency",
	  "  -n, --count COUNT      send COUNT pings (default 1)\n"
	  "  -i, --interval DUR     wait DUR between pings (default 1s)\n"
	  "      --wait DUR         keep trying until the first pong or DUR passes\n"
	  "      --probe            also seal random bytes to the service's public key\n"
	  "                         (keys_dir/SERVICE.pub) and check it opens them\n"
	  "exit status: 0 when at least one pong came back (and every probe opened), 1 otherwise",
	  ctl_ping },
	{ "services", "[SERVICE]", "list what is registered with the broker",
	  "  prints one line per instance: service, instance address, process, pid, host,\n"
	  "  seconds since last heard, messages in and out; -o json prints one array", ctl_services },
	{ "status", "[--local]", "every process on every host, from each host's loomd (docs/deploy.md)",
	  "  asks the broker for the registered loomd.HOST services and each of them for its\n"
	  "  processes: host, process, state (running, backoff, failed, stopping, stopped),\n"
	  "  pid, restarts, whether it is registered on the bus, since when, its last exit.\n"
	  "  A host of loom.yaml's hosts: without a registered loomd is listed as unknown.\n"
	  "  Then the lease (STATE_DIR/lease: which host may write the stores, and its epoch)\n"
	  "  and one line per process on the bus: service, instance, process, pid, role\n"
	  "  (primary, standby, no-answer) and detail (a primary's host and epoch; a standby's\n"
	  "  host and the sequence number of each store it follows; docs/recovery.md).\n"
	  "  -o json prints one HostStatusReply per host (the roles as one array when no\n"
	  "  loomd runs and loom.yaml has no hosts:).\n"
	  "  --local       without the bus: the tables loomd writes to STATE_DIR/run on this host\n"
	  "exit status: 0 every process running; 3 one is not, or a host did not answer; 1 no broker", ctl_status },
	{ "keys", "gen NAME [--dir DIR] [--force] | create | export --to FILE | import --from FILE | list | rotate",
	  "key pairs of processes; the installation's key set sealing secrets at rest",
	  "  gen NAME      write DIR/NAME.key (secret, 0600) and DIR/NAME.pub\n"
	  "  --dir DIR     key directory (default bus.keys_dir of the configuration)\n"
	  "  --force       replace an existing pair\n"
	  "  Copy NAME.pub into the broker's keys directory to allow NAME on the bus.\n"
	  "  create        a new key set (STATE_DIR/keyset) and installation id\n"
	  "  export --to FILE [--passphrase-file F] [--force]   the set, Argon2id + secretbox\n"
	  "  import --from FILE [--passphrase-file F]   refused when from another installation\n"
	  "  list          versions, when made, how many secrets each seals\n"
	  "  rotate        a new current version; every secret re-sealed; old versions kept\n"
	  "  The passphrase: --passphrase-file, else $LOOM_PASSPHRASE, else asked on the terminal.", ctl_keys },
	{ "secret", "set AGENT KEY | list", "agent credentials sealed with the key set (value on standard input)",
	  "  set AGENT KEY   seal the first line of standard input as AGENT's KEY (e.g. bind_password)\n"
	  "  list            the secrets, their key versions, and those a restore left to re-enter", ctl_secret },
	{ "backup", "--to DIR | verify DIR", "online backup of every store, the configuration and the state",
	  "  --to DIR      stores copied through read-only instances while processes run; config and\n"
	  "                state files; DIR/MANIFEST with SHA-256 checksums; DIR/backup.log;\n"
	  "                a failing step is retried once. The key set is never included.\n"
	  "  verify DIR    check every file against the MANIFEST (docs/recovery.md)", ctl_backup },
	{ "restore", "--from DIR --to CONFIG_DIR [--keyset FILE [--passphrase-file F]]",
	  "restore a backup onto an empty installation",
	  "  without --keyset everything but the secrets is restored, and the credentials to\n"
	  "  re-enter are listed (also by `loomctl secret list`). A damaged backup, a wrong\n"
	  "  passphrase, a key set of another installation, a target not empty: refused, nothing written.", ctl_restore },
	{ "store", "compare STORE_A STORE_B [--skip-cf NAME]... [--ignore-times]", "compare two stores object by object (recovery drills)",
	  "  every column family of either store, every key and value, both opened read-only\n"
	  "  (a running process's store is seen as it was at the open); per family the keys\n"
	  "  compared and how many are only in A, only in B, or differ, with the first few.\n"
	  "  --skip-cf NAME  leave a family out (e.g. run: the history of runs)\n"
	  "  --ignore-times  the engine's cs and mv objects compared without when they were\n"
	  "                  synchronized (changed_at, connected_at, seen_gen, export run ids):\n"
	  "                  a rerun from a backup against the original\n"
	  "exit status: 0 equal, 3 different, 1 a store cannot be read, 2 bad usage", ctl_store },
	{ "password", "set --agent NAME (--dn DN | --anchor ANCHOR)",
	  "set an account's password in a connected system, through its agent",
	  "  set           an administrator's reset: the old password is not needed\n"
	  "  --agent NAME  the agent (loom-ma-ldap: RFC 3062 Password Modify for OpenLDAP,\n"
	  "                unicodePwd for Active Directory, which needs ldaps:// or StartTLS)\n"
	  "  --dn DN       the account's DN\n"
	  "  --anchor A    or its anchor (entryUUID, objectGUID); with --dn too, both must\n"
	  "                name the same entry\n"
	  "  The password is asked twice without echo on a terminal, else read as the first\n"
	  "  line of standard input. It is sealed to the agent's public key\n"
	  "  (keys_dir/ma.NAME.pub, made by loomctl keys gen ma.NAME) and never crosses the\n"
	  "  bus in clear. -o json prints the agent's SetPasswordReply.\n"
	  "exit status: 0 set; 3 refused (the directory's or the agent's reason, and whether\n"
	  "a retry may help, on standard error); 1 no answer or no key; 2 bad usage", ctl_password },
	{ "sspr", "register|reset --account NAME | questions [--account NAME --reset]",
	  "self-service password reset through loom-workflow (docs/sspr.md)",
	  "  register      the password authentication challenge (the current password),\n"
	  "                then answers to at least N of the configured questions\n"
	  "  reset         answers to the K questions presented (J must be right), then\n"
	  "                the new password, which the engine sets on every connected\n"
	  "                system with password sync enabled (the source included)\n"
	  "  questions     the configured questions; with --reset the account's current\n"
	  "                draw (the same until a reset uses it)\n"
	  "  Asked without echo on a terminal. Otherwise standard input holds one line each:\n"
	  "  register: current password, then an answer per question in index order\n"
	  "  (empty: skipped); reset: an answer per question in index order (only the\n"
	  "  presented ones are sent), then the new password. Everything is sealed to\n"
	  "  keys_dir/workflow.pub. -o json prints loom-workflow's SsprReply.\n"
	  "exit status: 0 done; 3 refused (wrong answers, locked, ...); 1 no answer; 2 bad usage", ctl_sspr },
	{ "agent", "test|schema NAME", "test an agent's connection, or show the schema it finds in its connected system",
	  "  test      the agent checks its connected system: the file read and its\n"
	  "            directory writable, the database's tables readable, a bind to the\n"
	  "            directory (names checked against its schema), the ext program's own\n"
	  "            test, the policy service serving the agent\n"
	  "  schema    object types, anchors and attributes with their value types and\n"
	  "            whether multi-valued, as found there (docs/agents.md)\n"
	  "  The agent's process must be running (loomd starts it). -o json prints the reply.\n"
	  "exit status: 0; 3 the test failed or the schema cannot be read (why on standard\n"
	  "error); 1 no answer or no such agent; 2 bad usage", ctl_agent },
	{ "run", "AGENT PROFILE [--no-wait] [--allow-deletes N] | show ID",
	  "run a profile (full-import, delta-import, full-sync, delta-sync, export) and show its statistics",
	  "  Shows a progress line while the run goes on, then the run's counters with\n"
	  "  the first objects behind each, and its errors.\n"
	  "  --no-wait     print the run id and return at once\n"
	  "  --allow-deletes N  export: let up to N deletes past the agent's deletion\n"
	  "                threshold (an export past it stops and changes nothing)\n"
	  "  show ID       the statistics and errors of a past run\n"
	  "exit status: 0 success, 3 completed with object errors, 1 failed or stopped", ctl_run },
	{ "runs", "[AGENT] [-n N]", "list recent runs, newest first", NULL, ctl_runs },
	{ "schedule", "[NAME]", "list the schedules of config/loom.yaml: when each runs next, how it last ended",
	  "  prints one line per schedule: name, agent, profiles, every/cron, next due and\n"
	  "  last start (UTC), last status (or queued/running while it is), enabled;\n"
	  "  a sequence that stopped early has a second line saying at which step and why.\n"
	  "  Last start and status are kept since the engine started. -o json prints the reply.", ctl_schedule },
	{ "live", "[AGENT]", "the live streams (agents with live.enabled): state, last change, cookie age",
	  "  per agent: the stream's state (down, opening, up) and since when, the last\n"
	  "  change staged, how long ago the last batch came and the stored watermark was\n"
	  "  written (cookie age), what was staged, the sync+export sequence and how it\n"
	  "  last ended, and why the stream last went down. -o json prints the reply.", ctl_live },
	{ "pcns", "status [-n N] [--state S] | target list|add|remove|enable|disable ...",
	  "password change notification: the listener's queue, and a notifier's listeners (like pcnscfg)",
	  "  status                 loom-pcns: queue length, oldest change, what happened to the\n"
	  "                         changes since it started, its limits, each notifier;\n"
	  "                         -n N lists the N newest changes, --state S only those in S\n"
	  "                         (queued, delivered, unmatched, expired, failed)\n"
	  "  target list            the notifier's listeners in delivery order (the first is the\n"
	  "                         primary), with what the running notifier says of each\n"
	  "  target add NAME --endpoint tcp://HOST:PORT --key FILE.pub|Z85\n"
	  "         [--include-group G]... [--exclude-group G]... [--disabled]\n"
	  "         [--first | --before NAME] [--replace]\n"
	  "                         a listener: its endpoint and public key; only members of an\n"
	  "                         include group (when any), never members of an exclude group\n"
	  "                         (a group DN, or its name)\n"
	  "  target remove|enable|disable NAME\n"
	  "  --notify-config FILE   the notifier's file (default pcns-notify.yaml beside\n"
	  "                         loom.yaml; its `targets` names the targets file), or\n"
	  "  --file FILE            the targets file itself\n"
	  "  The targets file is rewritten atomically; loom-pcns-notify reloads it by itself.\n"
	  "exit status: 0; 1 no answer, or the file cannot be read or written; 2 bad usage", ctl_pcns },
	{ "report", "password-sync [--account A] [--agent X] [--pending] [--failed] [-n N]",
	  "password synchronization history: each change and what became of it on each target",
	  "  one line per change (newest first): when, id, state (pending, done, partial,\n"
	  "  unmatched, echo, no-targets), source agent, account, metaverse object, origin;\n"
	  "  then one line per target agent: state (pending, ok, failed, skipped,\n"
	  "  superseded), attempts, DN, and the agent's code and the server's message.\n"
	  "  --account A   only this account (name, DN or anchor)\n"
	  "  --agent X     only changes from or to agent X\n"
	  "  --pending     only changes with a target still pending\n"
	  "  --failed      only changes with a failed target, partial or unmatched\n"
	  "  -o json prints the engine's reply", ctl_report },
	{ "cs", "search AGENT [--dn DN|--anchor A|--state S] [-n N] | show AGENT ANCHOR",
	  "search and show connector-space objects",
	  "  --state: pending-import, pending-export, unconfirmed, error, connector,\n"
	  "           disconnector, normal, filtered, explicit, joined, placeholder", ctl_cs },
	{ "preview", "AGENT ANCHOR [--full|--delta] [--commit]",
	  "synchronize one object and explain every decision, changing nothing",
	  "  Runs the whole synchronization path for the object: connector filter,\n"
	  "  each join group and its candidates, projection, each flow with its rule,\n"
	  "  value and precedence, provisioning and deprovisioning with their rules,\n"
	  "  metaverse deletion with its cascade, and the pending exports that result.\n"
	  "  --commit      apply what it decided, as a sync run would\n"
	  "  --delta       as a delta sync would (default: as a full sync)\n"
	  "exit status: 0, or 3 when the object would fail (the errors are shown)", ctl_preview },
	{ "mv", "search ATTR=VALUE [--type T] [--limit N] | show ID", "search and show metaverse objects",
	  "  shows each attribute with the agent that contributed it, and the connectors", ctl_mv },
	{ "expr", "eval EXPRESSION [--attr NAME=VALUE]... [--int|--bool|--bin|--time|--ref NAME=VALUE]... "
	  "[--want TYPE] [-o json]",
	  "evaluate a sync-rule expression offline, against attributes given here",
	  "  Compiles EXPRESSION as the engine compiles a flow and evaluates it once; needs\n"
	  "  no configuration and no running service. The language and its functions are\n"
	  "  described in docs/expressions.md.\n"
	  "  -a, --attr NAME=VALUE   a string value of attribute NAME; repeat it for several\n"
	  "                          values (a multi-valued attribute)\n"
	  "      --int NAME=N        an integer value (decimal)\n"
	  "      --bool NAME=B       a boolean value: true or false\n"
	  "      --bin NAME=HEX      a binary value in hexadecimal (0a0b)\n"
	  "      --time NAME=T       a datetime, in any form CDate reads (2024-03-01T12:30:00Z)\n"
	  "      --ref NAME=DN       a reference (a DN)\n"
	  "      --want TYPE         the result must be a string, integer, boolean, binary,\n"
	  "                          datetime or reference, as the target of a flow demands\n"
	  "  -o, --output FMT        text (default) or json\n"
	  "  Attributes given are typed (a type error is found at compile time, as with a\n"
	  "  schema); attributes not given are absent, that is null. EXPRESSION '-' is read\n"
	  "  from standard input; an expression starting with '-' can follow '--'.\n"
	  "output: one line per value, its type first, strings and references quoted:\n"
	  "  string \"Ada Lovelace\"   integer 42   boolean true   binary 0a0b\n"
	  "  datetime 2026-11-21T10:00:00Z   reference \"cn=ada,dc=example\"\n"
	  "  or one of: null, authoritative-null, ignore-this-flow;\n"
	  "  -o json: {\"type\":\"string\",\"values\":[\"a\",\"b\"]} (type null when there is none)\n"
	  "examples:\n"
	  "  loomctl expr eval 'ProperCase(givenName + \" \" + sn)' -a givenName=ADA -a sn=lovelace\n"
	  "  loomctl expr eval 'LowerCase(proxyAddresses)' -a proxyAddresses=SMTP:A@X -a proxyAddresses=smtp:B@x\n"
	  "  loomctl expr eval 'IIF(GreaterThan(salary, 100000), \"high\", \"normal\")' --int salary=120000\n"
	  "  loomctl expr eval 'FormatDateTime(DateFromNum(pwdLastSet), \"yyyy-MM-dd\")' --int pwdLastSet=130543784930000000\n"
	  "  loomctl expr eval -o json 'Split(\"a,b,c\", \",\")'\n"
	  "exit status: 0 evaluated; 1 the expression does not compile (the error, with its\n"
	  "line and column, on standard error); 3 the evaluation failed (as a flow fails on\n"
	  "one object); 2 bad usage", ctl_expr },
	{ "xpath", "eval FILTER --resources FILE [--now DATETIME] [-o json]",
	  "evaluate a FIM XPath filter offline, against resources given in a YAML file",
	  "  Compiles FILTER as the policy service compiles a set's filter and evaluates it\n"
	  "  once against the resources of FILE; needs no configuration and no running\n"
	  "  service. The dialect is described in docs/xpath.md.\n"
	  "  -r, --resources FILE   a YAML list of maps, each with ObjectType, ObjectID and\n"
	  "                         attributes: a list is a multi-valued attribute; plain\n"
	  "                         true/false are booleans, plain integers integers, plain\n"
	  "                         2026-01-02T03:04:05Z and 2026-01-02 datetimes, the rest\n"
	  "                         (and anything quoted) strings; a string attribute\n"
	  "                         whose values name ObjectIDs of the file is a reference;\n"
	  "                         null, ~ and '' are no value. A Set or Group with a\n"
	  "                         Filter or ExplicitMember and no ComputedMember gets its\n"
	  "                         ComputedMember computed first\n"
	  "      --now DATETIME     the time fn:current-dateTime() gives (default: now)\n"
	  "  -o, --output FMT       text (default) or json\n"
	  "  FILTER '-' is read from standard input; a filter may also be given wrapped in\n"
	  "  <Filter Dialect=\"http://schemas.microsoft.com/2006/11/XPathFilterDialect\">.\n"
	  "output: the ObjectIDs selected, sorted, one per line; -o json: [\"id1\",\"id2\"]\n"
	  "examples:\n"
	  "  loomctl xpath eval \"/Person[EmployeeType = 'Contractor']\" -r people.yaml\n"
	  "  loomctl xpath eval \"/Person[Manager = /Person[AccountName = 'jsmith']]\" -r people.yaml\n"
	  "  loomctl xpath eval \"/Group[DisplayName = 'Admins']/ComputedMember\" -r people.yaml -o json\n"
	  "  loomctl xpath eval \"/Person[not(starts-with(DisplayName, '%'))]\" -r people.yaml\n"
	  "exit status: 0 evaluated (even when nothing matches); 1 the resources file cannot\n"
	  "be read or is wrong (FILE:LINE:COLUMN on standard error); 2 the filter does not\n"
	  "parse (the column and a caret on standard error) or bad usage; 3 the resources\n"
	  "make the filter meaningless (a reference compared with '<', ...)", ctl_xpath },
	{ "activate", "--keyset FILE [--passphrase-file F] [--host NAME] [--wait DUR]",
	  "make this host's standby processes primary (fencing the old primary)",
	  "  --keyset FILE      this installation's exported key set (`loomctl keys export`)\n"
	  "  --passphrase-file F  its passphrase (else $LOOM_PASSPHRASE, else asked)\n"
	  "  --host NAME        this host's name for the lease (default $LOOM_HOST, else the\n"
	  "                     system host name): the standby processes run with the same\n"
	  "  --wait DUR         how long to wait for them to answer as primary (default 60s)\n"
	  "  Writes the key set and the lease (epoch + 1, this host): the old primary's\n"
	  "  processes stop at their next write or within a second. Then each standby.SERVICE\n"
	  "  of this host restarts itself as SERVICE and opens the stores read-write.\n"
	  "  Refused, with nothing written: a wrong passphrase, a key set of another\n"
	  "  installation, a host that is already primary, no standby process on the bus.\n"
	  "exit status: 0 every standby process is primary; 1 refused or not all came up; 2 bad usage",
	  ctl_activate },
	CTL_POLICY_CMDS
	CTL_APPROVAL_CMDS
	{ NULL, NULL, NULL, NULL, NULL }
};

static void usage(FILE *out)
{
	fprintf(out,
	    "usage: loomctl [options] COMMAND [ARGS]\n"
	    "Administer a Loom deployment.\n\n"
	    "options:\n"
	    "  -c, --config FILE   deployment file (default $LOOM_CONFIG or config/loom.yaml)\n"
	    "  -o, --output FMT    text (default) or json\n"
	    "  -t, --timeout DUR   how long to wait for a reply (default bus.request_timeout)\n"
	    "      --key NAME      key pair to use when the bus uses CURVE (default loomctl)\n"
	    "  -h, --help          this help; `loomctl COMMAND --help` for a command\n"
	    "  -V, --version       print the version\n\ncommands:\n");
	for (const ctl_cmd_t *c = ctl_cmds; c->name; c++)
		fprintf(out, "  %-10s %s\n", c->name, c->help);
}

void ctl_cmd_usage(const ctl_cmd_t *cmd, FILE *out)
{
	fprintf(out, "usage: loomctl %s %s\n%s\n", cmd->name, cmd->args, cmd->help);
	if (cmd->details)
		fprintf(out, "\n%s\n", cmd->details);
}

bool ctl_wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			return false;
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
			return true;
	}
	return false;
}

void ctl_sleep_ms(long long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0)
		;
}

int ctl_parse_duration(const char *flag, const char *s, long long *ret_ms)
{
	if (loom_config_parse_duration(s, ret_ms) < 0) {
		fprintf(stderr, "loomctl: bad %s '%s': expected a duration such as 500ms, 2s, 1m\n", flag, s);
		return -1;
	}
	return 0;
}

int ctl_parse_limit(const char *s, uint32_t *ret)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (s[0] == '\0' || s[0] == '-' || *end || errno || v < 1 || v > CTL_LIMIT_MAX) {
		fprintf(stderr, "loomctl: bad --limit '%s': expected a number from 1 to %d\n", s, CTL_LIMIT_MAX);
		return -1;
	}
	*ret = (uint32_t)v;
	return 0;
}

int ctl_parse_offset(const char *s, uint32_t *ret)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (s[0] == '\0' || s[0] == '-' || *end || errno || v > UINT32_MAX) {
		fprintf(stderr, "loomctl: bad --offset '%s': expected a number from 0 to %u\n", s, UINT32_MAX);
		return -1;
	}
	*ret = (uint32_t)v;
	return 0;
}

/* Sends rq to service and returns the reply body of type want. */
ProtobufCMessage *ctl_ask(ctl_t *ctl, const char *service, const ProtobufCMessage *rq,
    const ProtobufCMessageDescriptor *want, const char *what)
{
	if (ctl_connect(ctl) < 0)
		return NULL;
	Loom__Envelope *env = NULL;
	const char *err;
	if (loom_bus_request(ctl->bus, service, rq, ctl->timeout_ms, &env, &err) < 0) {
		fprintf(stderr, "loomctl %s: %s\n", what, err);
		return NULL;
	}
	ProtobufCMessage *m = loom_envelope_body(env, want, &err);
	if (m == NULL)
		fprintf(stderr, "loomctl %s: the %s service's reply: %s\n", what, service, err);
	loom_envelope_free(&env);
	return m;
}

ProtobufCMessage *ctl_ask_engine(ctl_t *ctl, const ProtobufCMessage *rq, const ProtobufCMessageDescriptor *want,
    const char *what)
{
	return ctl_ask(ctl, "engine", rq, want, what);
}

void ctl_print_json(const ProtobufCMessage *m)
{
	loom_buf_t b = LOOM_BUF_INIT;
	loom_pbfmt_json(&b, m);
	printf("%s\n", loom_buf_cstr(&b));
	loom_buf_release(&b);
}

void ctl_fmt_time(char *out, size_t n, int64_t us)
{
	if (us == 0) {
		snprintf(out, n, "-");
		return;
	}
	time_t s = (time_t)(us / 1000000);
	struct tm tm;
	gmtime_r(&s, &tm);
	strftime(out, n, "%Y-%m-%d %H:%M:%S", &tm);
}

int ctl_load_config(ctl_t *ctl)
{
	if (ctl->cfg_loaded)
		return 0;
	loom_cfg_diags_t diags;
	if (loom_deploy_load(ctl->config_path, &ctl->cfg, &diags) < 0) {
		for (size_t i = 0; i < diags.n; i++)
			fprintf(stderr, "%s\n", diags.v[i].text);
		loom_cfg_diags_release(&diags);
		loom_deploy_release(&ctl->cfg);
		return -1;
	}
	loom_cfg_diags_release(&diags);
	ctl->cfg_loaded = true;
	if (ctl->timeout_ms <= 0)
		ctl->timeout_ms = ctl->cfg.bus.request_timeout_ms;
	return 0;
}

int ctl_connect(ctl_t *ctl)
{
	if (ctl->bus)
		return 0;
	if (ctl_load_config(ctl) < 0)
		return -1;
	loom_keypair_t kp;
	bool have = false;
	uint8_t server[LOOM_KEY_LEN];
	char *err = NULL;
	if (loom_daemon_load_keys(&ctl->cfg, ctl->key_name, ctl->cfg.bus.curve, &kp, &have, server, &err) < 0) {
		fprintf(stderr, "loomctl: %s\n", err);
		free(err);
		return -1;
	}
	if (ctl->zctx == NULL) /* one context for every attempt (ping --wait retries) */
		ctl->zctx = zmq_ctx_new();
	loom_bus_opts_t bo = {
		.service = "loomctl", .process = "loomctl", .router = ctl->cfg.bus.router,
		.heartbeat_ms = ctl->cfg.bus.heartbeat_ms, .liveness = (unsigned)ctl->cfg.bus.liveness,
		.keypair = have ? &kp : NULL, .server_key = ctl->cfg.bus.curve ? server : NULL,
	};
	int rc = loom_bus_new(ctl->zctx, &bo, &ctl->bus, &err);
	loom_keypair_wipe(&kp);
	if (rc < 0) {
		fprintf(stderr, "loomctl: %s\n", err);
		free(err);
		return -1;
	}
	const char *werr;
	if (loom_bus_wait_up(ctl->bus, ctl->timeout_ms, &werr) < 0) {
		fprintf(stderr, "loomctl: %s\n", werr);
		loom_bus_destroy(&ctl->bus, NULL); /* not connected: the next attempt starts afresh */
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	ctl_t ctl;
	memset(&ctl, 0, sizeof ctl);
	ctl.config_path = loom_deploy_default_path();
	ctl.key_name = "loomctl";
	loom_log_init("loomctl");
	loom_log_set_level(LOOM_LOG_WARNING);
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "output", required_argument, NULL, 'o' },
		{ "timeout", required_argument, NULL, 't' },
		{ "key", required_argument, NULL, 'k' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	/* '+': stop at the command word so its own flags reach it. */
	while ((c = getopt_long(argc, argv, "+c:o:t:hV", opts, NULL)) != -1) {
		switch (c) {
		case 'c': ctl.config_path = optarg; break;
		case 'o':
			if (strcmp(optarg, "json") == 0) {
				ctl.json = true;
			} else if (strcmp(optarg, "text") != 0) {
				fprintf(stderr, "loomctl: bad --output '%s': expected text or json\n", optarg);
				return 2;
			}
			break;
		case 't':
			if (ctl_parse_duration("--timeout", optarg, &ctl.timeout_ms) < 0)
				return 2;
			break;
		case 'k': ctl.key_name = optarg; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("loomctl %s\n", LOOM_VERSION); return 0;
		default: fprintf(stderr, "loomctl: see loomctl --help\n"); return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	const char *word = argv[optind];
	if (strcmp(word, "help") == 0) {
		if (optind + 1 < argc) {
			for (const ctl_cmd_t *cmd = ctl_cmds; cmd->name; cmd++)
				if (strcmp(cmd->name, argv[optind + 1]) == 0) {
					ctl_cmd_usage(cmd, stdout);
					return 0;
				}
		}
		usage(stdout);
		return 0;
	}
	for (const ctl_cmd_t *cmd = ctl_cmds; cmd->name; cmd++) {
		if (strcmp(cmd->name, word) != 0)
			continue;
		int sub_argc = argc - optind;
		char **sub_argv = argv + optind;
		int status;
		if (ctl_wants_help(sub_argc, sub_argv)) {
			ctl_cmd_usage(cmd, stdout);
			status = 0;
		} else {
			optind = 0; /* glibc: 0 re-initialises getopt for the subcommand's argv */
			status = cmd->run(&ctl, sub_argc, sub_argv);
		}
		loom_bus_destroy(&ctl.bus, "loomctl done");
		if (ctl.zctx)
			zmq_ctx_term(ctl.zctx);
		if (ctl.cfg_loaded)
			loom_deploy_release(&ctl.cfg);
		return status;
	}
	fprintf(stderr, "loomctl: unknown command '%s' (see loomctl --help)\n", word);
	return 2;
}

char *ctl_read_stdin(void)
{
	loom_buf_t b = LOOM_BUF_INIT;
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof chunk, stdin)) > 0)
		loom_buf_add(&b, chunk, n);
	return loom_buf_steal(&b);
}

const char *ctl_option_value(const char *cmd, int argc, char **argv, int *i, const char *flag, size_t flen)
{
	const char *a = argv[*i];
	if (a[flen] == '=')
		return a + flen + 1;
	if (*i + 1 >= argc) {
		fprintf(stderr, "%s: %s needs a value\n", cmd, flag);
		return NULL;
	}
	return argv[++*i];
}

void ctl_show_caret(const char *text, unsigned line, unsigned col)
{
	if (line == 0 || col == 0)
		return;
	const char *p = text;
	for (unsigned l = 1; l < line && p; l++) {
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	if (p == NULL)
		return;
	size_t len = strcspn(p, "\r\n");
	loom_buf_t b = LOOM_BUF_INIT;
	loom_buf_adds(&b, "  ");
	loom_buf_add(&b, p, len);
	loom_buf_adds(&b, "\n  ");
	/* columns count characters: one blank per character, tabs kept */
	unsigned k = 1;
	for (size_t i = 0; i < len && k < col; i++) {
		unsigned char ch = (unsigned char)p[i];
		if ((ch & 0xc0) == 0x80)
			continue;
		loom_buf_addc(&b, ch == '\t' ? '\t' : ' ');
		k++;
	}
	for (; k < col; k++)
		loom_buf_addc(&b, ' ');
	loom_buf_adds(&b, "^\n");
	fputs(loom_buf_cstr(&b), stderr);
	loom_buf_release(&b);
}


static int read_secret_line(char *buf, size_t max, size_t *ret_len)
{
	size_t len = 0;
	for (;;) {
		char c;
		ssize_t n = read(STDIN_FILENO, &c, 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0) {
			if (len == 0)
				return 1;
			break;
		}
		if (c == '\n')
			break;
		if (len == max) {
			errno = EMSGSIZE;
			return -1;
		}
		buf[len++] = c;
	}
	if (len && buf[len - 1] == '\r')
		len--;
	buf[len] = '\0';
	*ret_len = len;
	return 0;
}

int ctl_read_secret(const char *prompt, bool tty, char *buf, size_t max, size_t *ret_len)
{
	if (!tty)
		return read_secret_line(buf, max, ret_len);
	struct termios old, quiet;
	if (tcgetattr(STDIN_FILENO, &old) < 0)
		return -1;
	quiet = old;
	quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
	quiet.c_lflag |= ICANON;
	if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) < 0)
		return -1;
	fputs(prompt, stderr);
	fflush(stderr);
	int rc = read_secret_line(buf, max, ret_len);
	int saved = errno;
	tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
	fputs("\n", stderr);
	errno = saved;
	return rc;
}
