/* loom_agentcfg.c - the table behind config/agents/NAME.yaml. */
#include "loom_agentcfg.h"
#include "loom_alloc.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const agent_types[] = { "file", "ldap", "policy", "ext", "sql", NULL };
static const char *const sql_drivers[] = { "postgresql", "sqlite", NULL };
static const char *const sql_delta_modes[] = { "none", "changes", "modified", NULL };
static const char *const ldap_directories[] = { "openldap", "ad", NULL };
static const char *const ldap_ad_deltas[] = { "dirsync", "usn", NULL };
static const char *const ldap_export_anchors[] = { "post-read", "import", NULL };
static const char *const ldap_binds[] = { "simple", "sasl-external", "none", NULL };
static const char *const ldap_scopes[] = { "sub", "one", "base", NULL };
static const char *const file_formats[] = { "csv", "ldif", "dsml", "fixed", "avp", NULL };
static const char *const fixed_types[] = { "string", "integer", "boolean", "datetime", NULL };
static const char *const fixed_aligns[] = { "auto", "left", "right", NULL };
static const char *const export_modes[] = { "apply", "changes", NULL };

static const loom_cfg_key_t csv_keys[] = {
	{ .name = "delimiter", .type = LOOM_CFG_STRING, .offset = offsetof(loom_agentcfg_csv_t, delimiter),
	  .def = ",", .help = "field delimiter (one character)" },
	{ .name = "header", .type = LOOM_CFG_BOOL, .offset = offsetof(loom_agentcfg_csv_t, header),
	  .def = "true", .help = "the first row names the columns" },
	{ NULL }
};
static const loom_cfg_table_t csv_table = { .what = "csv", .keys = csv_keys };

static const loom_cfg_key_t fixed_col_keys[] = {
	{ .name = "name", .type = LOOM_CFG_STRING, .offset = offsetof(loom_agentcfg_fixed_col_t, name),
	  .flags = LOOM_CFG_REQUIRED | LOOM_CFG_NONEMPTY, .help = "the attribute the column holds" },
	{ .name = "start", .type = LOOM_CFG_INT, .offset = offsetof(loom_agentcfg_fixed_col_t, start),
	  .def = "0", .min = 0, .max = 1000000, .help = "1-based character where the column starts (0: after the previous one)" },
	{ .name = "width", .type = LOOM_CFG_INT, .offset = offsetof(loom_agentcfg_fixed_col_t, width),
	  .flags = LOOM_CFG_REQUIRED, .min = 1, .max = 1000000, .help = "characters (UTF-8 code points)" },
	{ .name = "type", .type = LOOM_CFG_ENUM, .offset = offsetof(loom_agentcfg_fixed_col_t, type),
	  .def = "string", .choices = fixed_types, .help = "string, integer, boolean or datetime" },
	{ .name = "format", .type = LOOM_CFG_STRING, .offset = offsetof(loom_agentcfg_fixed_col_t, format),
	  .help = "datetime: strftime/strptime format (default: ISO 8601 forms, see docs/agents.md)" },
	{ .name = "align", .type = LOOM_CFG_ENUM, .offset = offsetof(loom_agentcfg_fixed_col_t, align),
	  .def = "auto", .choices = fixed_aligns, .help = "export padding: auto (integers right, the rest left), left or right" },
	{ NULL }
};
static const loom_cfg_table_t fixed_col_table = {
	.what = "column", .size = sizeof(loom_agentcfg_fixed_col_t), .keys = fixed_col_keys
};

static const loom_cfg_key_t fixed_keys[] = {
	{ .name = "columns", .type = LOOM_CFG_LIST, .offset = offsetof(loom_agentcfg_fixed_t, columns),
	  .sub = &fixed_col_table, .help = "the layout: name, start, width, type, format, align" },
	{ .name = "header_lines", .type = LOOM_CFG_INT, .offset = offsetof(loom_agentcfg_fixed_t, header_lines),
	  .def = "0", .min = 0, .max = 1000, .help = "lines at the top that are not records (kept as they are on export)" },
	{ NULL }
};
static const loom_cfg_table_t fixed_table = { .what = "fixed", .keys = fixed_keys };

static const loom_cfg_key_t avp_keys[] = {
	{ .name = "separator", .type = LOOM_CFG_STRING, .offset = offsetof(loom_agentcfg_avp_t, separator),
	  .def = ":", .help = "the character between an attribute's name and its value (doubled: base64)" },
	{ NULL }
};
static const loom_cfg_table_t avp_table = { .what = "avp", .keys = avp_keys };

static const loom_cfg_key_t file_keys[] = {
	{ .name = "format", .type = LOOM_CFG_ENUM, .offset = offsetof(loom_agentcfg_file_t, format),
	  .flags = LOOM_CFG_REQUIRED, .choices = file_formats,
	  .help = "csv, ldif, dsml (DSML v2), fixed (fixed-width columns) or avp (attribute-value pairs)" },
	{ .name = "path", .type = LOOM_CFG_PATH, .offset = offsetof(loom_agentcfg_file_t, path),
	  .flags = LOOM_CFG_REQUIRED | LOOM_CFG_NONEMPTY, .help = "the file that is the connected system" },
	{ .name = "export_mode", .type = LOOM_CFG_ENUM, .offset = offsetof(loom_agentcfg_file_t, export_mode),
	  .def = "apply", .choices = export_modes, .help = "apply: rewrite path with changes applied; changes: write change files" },
	{ .name = "changes_dir", .type = LOOM_CFG_PATH, .offset = offsetof(loom_agentcfg_file_t, changes_dir),
	  .help = "where export_mode changes writes one file per export run" },
	{ .name = "delta_dir", .type = LOOM_CFG_PATH, .offset = offsetof(loom_agentcfg_file_t, delta_dir),
	  .help = "change files read by delta import, in name order (ldif: *.ldif, dsml: *.xml/*.dsml, avp: *.avp)" },
	{ .name = "allow_file_urls", .type = LOOM_CFG_BOOL, .offset = offsetof(loom_agentcfg_file_t, allow_file_urls),
	  .def = "false", .help = "accept LDIF ':< file://' values (under the file's directory only)" },
	{ .name = "dn_attribute", .type = LOOM_CFG_STRING, .offset = offsetof(loom_agentcfg_file_t, dn_attribute),
	  .help = "csv, fixed and avp: the attribute whose value makes each object's DN NAME=VALUE (default: the anchor)" },
	{ .name = "multi_value_separator", .type = LOOM_CFG_STRING, .offset = offsetof(loom_agentcfg_file_t, multi_value_separator),
	  .def = "|", .help = "csv and fixed: separates several values in one cell (\"\" for none)" },
	{ .name = "csv", .type = LOOM_CFG_SECTION, .offset = offsetof(loom_agentcfg_file_t, csv),
	  .sub = &csv_table, .help = "csv dialect" },
	{ .name = "fixed", .type = LOOM_CFG_SECTION, .offset = offsetof(loom_agentcfg_file_t, fixed),
	  .sub = &fixed_table, .help = "fixed: the column layout" },
	{ .name = "avp", .type = LOOM_CFG_SECTION, .offset = offsetof(loom_agentcfg_file_t, avp),
	  .sub = &avp_table, .help = "avp: attribute-value pairs" },
	{ NULL }
};
static const loom_cfg_table_t file_table = { .what = "file", .keys = file_keys };

static const loom_cfg_key_t ldap_base_keys[] = {
	{ .name = "dn", .type = LOOM_CFG_TEXT, .offset = offsetof(loom_agentcfg_ldap_base_t, dn),
	  .flags = LOOM_CFG_REQUIRED | LOOM_CFG_NONEMPTY, .help = "search base DN" },
	{ .name = "scope", .type = LOOM_CFG_ENUM, .offset = offsetof(loom_agentcfg_ldap_base_t, scope),
	  .def = "sub", .choices = ldap_scopes, .help = "sub (the base and everything under it), one (its children) or base" },
	{ .name = "filter", .type = LOOM_CFG_TEXT, .offset = offsetof(loom_agentcfg_ldap_base_t, filter),
	  .def = "(objectClass=*)", .help = "LDAP filter (RFC 4515) entries must match" },
	{ NULL }
};
static const loom_cfg_table_t ldap_base_table = {
	.what = "base", .size = sizeof(loom_agentcfg_ldap_base_t), .keys = ldap_base_keys
};

static const loom_cfg_key_t ldap_class_keys[] = {
	{ .name = "object_class", .type = LOOM_CFG_STRING, .offset = offsetof(loom_agentcfg_ldap_class_t, object_class),
	  .flags = LOOM_CFG_REQUIRED | LOOM_CFG_NONEMPTY, .help = "an objectClass value" },
	{ .name = "type", .type = LOOM_CFG_STRING, .offset = offsetof(loom_agentcfg_ldap_class_t, type),
	  .flags = LOOM_CFG_REQUIRED | LOOM_CFG_NONEMPTY, .help = "connector-space object type of entries of that class" },
	{ NULL }
};
static const loom_cfg_table_t ldap_class_table = {
	.what = "object_classes", .size = sizeof(loom_agentcfg_ldap_class_t), .keys = ldap_class_keys
};

static const loom_cfg_key_t ldap_keys[] = {
	{ .name = "uri", .type = LOOM_CFG_TEXT, .offset = offsetof(loom_agentcfg_ldap_t, uri),
	  .flags = LOOM_CFG_REQUIRED | LOOM_CFG_NONEMPTY, .help = "ldap://HOST:PORT, ldaps://HOST:PORT or ldapi://URL-ENCODED-PATH" },
	{ .name = "directory", .type = LOOM_CFG_ENUM, .offset = offsetof(loom_agentcfg_ldap_t, directory),
	  .def = "openldap", .choices = ldap_directories, .help = "openldap or ad (sets the default anchor)" },
	{ .name = "ad_delta", .type = LOOM_CFG_ENUM, .offset = offsetof(loom_agentcfg_ldap_t, ad_delta),
	  .def = "dirsync", .choices = ldap_ad_deltas,
	  .help = "directory ad: delta import by dirsync (falls back to usn where the account may not use DirSync) "
		  "or by usn (uSNChanged and deleted objects)" },
	{ .name = "bind", .type = LOOM_CFG_ENUM, .offset = offsetof(loom_agentcfg_ldap_t, bind),
	  .def = "simple", .choices = ldap_binds, .help = "simple (bind_dn + password), sasl-external (ldapi peer credentials or TLS client certificate) or none" },
	{ .name = "bind_dn", .type = LOOM_CFG_STRING, .offset = offsetof(loom_agentcfg_ldap_t, bind_dn),
	  .help = "simple bind: the DN bound as" },
	{ .name = "password", .type = LOOM_CFG_STRING, .offset = offsetof(loom_agentcfg_ldap_t, password),
	  .help = "simple bind: the password (prefer password_file; never logged)" },
	{ .name = "password_file", .type = LOOM_CFG_PATH, .offset = offsetof(loom_agentcfg_ldap_t, password_file),
	  .help = "simple bind: a file holding the password (one line; read at each bind, never logged)" },
	{ .name = "password_secret", .type = LOOM_CFG_STRING, .offset = offsetof(loom_agentcfg_ldap_t, password_secret),
	  .help = "simple bind: the name of a secret set with `loomctl secret set AGENT NAME`, sealed with the "
		  "key set and opened at each bind (docs/recovery.md)" },
	{ .name = "starttls", .type = LOOM_CFG_BOOL, .offset = offsetof(loom_agentcfg_ldap_t, starttls),
	  .def = "false", .help = "ldap:// only: StartTLS before binding; the server certificate must verify" },
	{ .name = "ca_file", .type = LOOM_CFG_PATH, .offset = offsetof(loom_agentcfg_ldap_t, ca_file),
	  .help = "PEM CA certificates that verify the server (ldaps, StartTLS); default: the system's" },
	{ .name = "timeout", .type = LOOM_CFG_DURATION, .offset = offsetof(loom_agentcfg_ldap_t, timeout_ms),
	  .def = "10s", .min = 100, .max = 3600000, .help = "connect and operation timeout" },
	{ .name = "page_size", .type = LOOM_CFG_INT, .offset = offsetof(loom_agentcfg_ldap_t, page_size),
	  .def = "500", .min = 1, .max = 100000, .help = "entries per page of a full import (RFC 2696)" },
	{ .name = "connections", .type = LOOM_CFG_INT, .offset = offsetof(loom_agentcfg_ldap_t, connections),
	  .def = "2", .min = 1, .max = 64, .help = "connections an export uses" },
	{ .name = "in_flight", .type = LOOM_CFG_INT, .offset = offsetof(loom_agentcfg_ldap_t, in_flight),
	  .def = "8", .min = 1, .max = 1000, .help = "export operations outstanding per connection" },
	{ .name = "export_anchor", .type = LOOM_CFG_ENUM, .offset = offsetof(loom_agentcfg_ldap_t, export_anchor),
	  .def = "post-read", .choices = ldap_export_anchors,
	  .help = "how an exported add learns its new entry's anchor: post-read (in the add's response, RFC 4527; "
		  "a search where the server ignores the control) or import (not asked: the next import of the "
		  "agent finds the entry by its DN; the server does less per add)" },
	{ .name = "bases", .type = LOOM_CFG_LIST, .offset = offsetof(loom_agentcfg_ldap_t, bases),
	  .flags = LOOM_CFG_REQUIRED | LOOM_CFG_NONEMPTY, .sub = &ldap_base_table,
	  .help = "where the agent's objects live: dn, scope, filter" },
	{ .name = "object_classes", .type = LOOM_CFG_LIST, .offset = offsetof(loom_agentcfg_ldap_t, object_classes),
	  .sub = &ldap_class_table,
	  .help = "objectClass -> object type, first match wins; when given, only entries of these classes are read" },
	{ .name = "attributes", .type = LOOM_CFG_STRLIST, .offset = offsetof(loom_agentcfg_ldap_t, attributes),
	  .help = "attributes imported (default: all user attributes)" },
	{ .name = "binary", .type = LOOM_CFG_STRLIST, .offset = offsetof(loom_agentcfg_ldap_t, binary),
	  .help = "attributes imported as binary values (others are binary only when not UTF-8)" },
	{ NULL }
};
const loom_cfg_table_t loom_agentcfg_ldap_table = { .what = "ldap", .keys = ldap_keys };

static const loom_cfg_key_t policy_keys[] = {
	{ .name = "service", .type = LOOM_CFG_STRING, .offset = offsetof(loom_agentcfg_policy_t, service),
	  .def = "workflow", .flags = LOOM_CFG_NONEMPTY, .help = "bus service name of the policy service (loom-workflow)" },
	{ .name = "object_types", .type = LOOM_CFG_STRLIST, .offset = offsetof(loom_agentcfg_policy_t, object_types),
	  .def = "[Person, Group]", .help = "resource types imported (and accepted on export)" },
	{ .name = "requester", .type = LOOM_CFG_STRING, .offset = offsetof(loom_agentcfg_policy_t, requester),
	  .def = "sync", .flags = LOOM_CFG_NONEMPTY,
	  .help = "who the requests made by an export name as requester (the built-in sync identity, or an ObjectID)" },
	{ NULL }
};
const loom_cfg_table_t loom_agentcfg_policy_table = { .what = "policy", .keys = policy_keys };

static const loom_cfg_key_t ext_keys[] = {
	{ .name = "command", .type = LOOM_CFG_STRLIST, .offset = offsetof(loom_agentcfg_ext_t, command),
	  .flags = LOOM_CFG_NONEMPTY,
	  .help = "the program and its arguments, run without a shell (a program name without '/' is looked up in PATH, "
		  "a relative path from dir)" },
	{ .name = "dir", .type = LOOM_CFG_PATH, .offset = offsetof(loom_agentcfg_ext_t, dir),
	  .help = "the program's working directory (default: the directory of the agent's file)" },
	{ .name = "timeout", .type = LOOM_CFG_DURATION, .offset = offsetof(loom_agentcfg_ext_t, timeout_ms),
	  .def = "30s", .min = 100, .max = 86400000,
	  .help = "a program silent this long while Loom waits for it is killed and the operation fails" },
	{ .name = "max_line", .type = LOOM_CFG_SIZE, .offset = offsetof(loom_agentcfg_ext_t, max_line),
	  .def = "16MiB", .min = 1024, .max = 1073741824, .help = "the longest line the program may write" },
	{ NULL }
};
const loom_cfg_table_t loom_agentcfg_ext_table = { .what = "ext", .keys = ext_keys };

static const loom_cfg_key_t sql_mv_keys[] = {
	{ .name = "table", .type = LOOM_CFG_STRING, .offset = offsetof(loom_agentcfg_sql_mv_t, table),
	  .flags = LOOM_CFG_NONEMPTY, .help = "the table of multi-valued attributes: one row per value" },
	{ .name = "anchor_column", .type = LOOM_CFG_STRING, .offset = offsetof(loom_agentcfg_sql_mv_t, anchor_column),
	  .def = "anchor", .flags = LOOM_CFG_NONEMPTY, .help = "the column holding the object's anchor" },
	{ .name = "name_column", .type = LOOM_CFG_STRING, .offset = offsetof(loom_agentcfg_sql_mv_t, name_column),
	  .def = "name", .flags = LOOM_CFG_NONEMPTY, .help = "the column holding the attribute's name" },
	{ .name = "value_column", .type = LOOM_CFG_STRING, .offset = offsetof(loom_agentcfg_sql_mv_t, value_column),
	  .def = "value", .flags = LOOM_CFG_NONEMPTY, .help = "the column holding one value" },
	{ NULL }
};
static const loom_cfg_table_t sql_mv_table = { .what = "multi_valued", .keys = sql_mv_keys };

static const loom_cfg_key_t sql_table_keys[] = {
	{ .name = "object_type", .type = LOOM_CFG_STRING, .offset = offsetof(loom_agentcfg_sql_table_t, object_type),
	  .flags = LOOM_CFG_REQUIRED | LOOM_CFG_NONEMPTY, .help = "the object type of its rows" },
	{ .name = "table", .type = LOOM_CFG_STRING, .offset = offsetof(loom_agentcfg_sql_table_t, table),
	  .flags = LOOM_CFG_REQUIRED | LOOM_CFG_NONEMPTY, .help = "the table or view (schema.name allowed; a view is read-only)" },
	{ .name = "anchor", .type = LOOM_CFG_STRING, .offset = offsetof(loom_agentcfg_sql_table_t, anchor),
	  .flags = LOOM_CFG_NONEMPTY, .help = "the anchor column (default: the agent's anchor)" },
	{ .name = "dn_column", .type = LOOM_CFG_STRING, .offset = offsetof(loom_agentcfg_sql_table_t, dn_column),
	  .help = "a column holding each row's DN (default: the DN is ANCHOR_COLUMN=VALUE)" },
	{ .name = "modified_column", .type = LOOM_CFG_STRING, .offset = offsetof(loom_agentcfg_sql_table_t, modified_column),
	  .help = "delta mode modified: the column of the row's last change (default: sql.delta.column)" },
	{ .name = "deleted_column", .type = LOOM_CFG_STRING, .offset = offsetof(loom_agentcfg_sql_table_t, deleted_column),
	  .flags = LOOM_CFG_NONEMPTY,
	  .help = "soft delete: a row whose value here is neither NULL nor false is deleted (not imported; a delta by "
		  "modified reports it as a delete) (default: sql.delta.deleted_column)" },
	{ .name = "multi_valued", .type = LOOM_CFG_SECTION, .offset = offsetof(loom_agentcfg_sql_table_t, multi_valued),
	  .sub = &sql_mv_table, .help = "the table of multi-valued attributes (anchor, name, value)" },
	{ NULL }
};
static const loom_cfg_table_t sql_table_table = {
	.what = "table", .size = sizeof(loom_agentcfg_sql_table_t), .keys = sql_table_keys
};

static const loom_cfg_key_t sql_delta_keys[] = {
	{ .name = "mode", .type = LOOM_CFG_ENUM, .offset = offsetof(loom_agentcfg_sql_delta_t, mode),
	  .def = "none", .choices = sql_delta_modes,
	  .help = "none, changes (a change table filled by triggers) or modified (a timestamp column per table)" },
	{ .name = "table", .type = LOOM_CFG_STRING, .offset = offsetof(loom_agentcfg_sql_delta_t, table),
	  .def = "loom_changes", .flags = LOOM_CFG_NONEMPTY, .help = "changes: the change table (docs/agents.md has its DDL)" },
	{ .name = "column", .type = LOOM_CFG_STRING, .offset = offsetof(loom_agentcfg_sql_delta_t, column),
	  .def = "modified", .flags = LOOM_CFG_NONEMPTY, .help = "modified: the timestamp column of every table" },
	{ .name = "deleted_column", .type = LOOM_CFG_STRING, .offset = offsetof(loom_agentcfg_sql_delta_t, deleted_column),
	  .flags = LOOM_CFG_NONEMPTY,
	  .help = "the soft-delete (tombstone) column of every table: the only way a delta by modified sees a delete "
		  "(a flag or a deleted_at time; the application must also set the modified column)" },
	{ .name = "overlap", .type = LOOM_CFG_DURATION, .offset = offsetof(loom_agentcfg_sql_delta_t, overlap_ms),
	  .def = "1m", .min = 0, .max = 86400000,
	  .help = "modified: rows changed this long before the watermark are read again (transactions that were "
		  "still open when it was taken)" },
	{ NULL }
};
static const loom_cfg_table_t sql_delta_table = { .what = "delta", .keys = sql_delta_keys };

static const loom_cfg_key_t sql_keys[] = {
	{ .name = "driver", .type = LOOM_CFG_ENUM, .offset = offsetof(loom_agentcfg_sql_t, driver),
	  .flags = LOOM_CFG_REQUIRED, .choices = sql_drivers, .help = "postgresql (libpq) or sqlite" },
	{ .name = "conninfo", .type = LOOM_CFG_STRING, .offset = offsetof(loom_agentcfg_sql_t, conninfo),
	  .help = "postgresql: a libpq connection string, e.g. \"host=127.0.0.1 port=5432 dbname=hr user=loom\" "
		  "(keep the password in password_file)" },
	{ .name = "password_file", .type = LOOM_CFG_PATH, .offset = offsetof(loom_agentcfg_sql_t, password_file),
	  .help = "postgresql: a file holding the password (one line; never logged)" },
	{ .name = "database", .type = LOOM_CFG_PATH, .offset = offsetof(loom_agentcfg_sql_t, database),
	  .help = "sqlite: the database file" },
	{ .name = "timeout", .type = LOOM_CFG_DURATION, .offset = offsetof(loom_agentcfg_sql_t, timeout_ms),
	  .def = "30s", .min = 100, .max = 86400000, .help = "connect and statement timeout (sqlite: busy timeout)" },
	{ .name = "tables", .type = LOOM_CFG_LIST, .offset = offsetof(loom_agentcfg_sql_t, tables),
	  .flags = LOOM_CFG_REQUIRED | LOOM_CFG_NONEMPTY, .sub = &sql_table_table,
	  .help = "a table or view per object type" },
	{ .name = "delta", .type = LOOM_CFG_SECTION, .offset = offsetof(loom_agentcfg_sql_t, delta),
	  .sub = &sql_delta_table, .help = "delta import: from a change table or a modified column" },
	{ .name = "password_statement", .type = LOOM_CFG_STRING, .offset = offsetof(loom_agentcfg_sql_t, password_statement),
	  .help = "SetPassword: the statement that sets it, $1 the anchor, $2 the password (parameters, never pasted in)" },
	{ NULL }
};
const loom_cfg_table_t loom_agentcfg_sql_table = { .what = "sql", .keys = sql_keys };

static const loom_cfg_key_t threshold_keys[] = {
	{ .name = "count", .type = LOOM_CFG_INT, .offset = offsetof(loom_agentcfg_threshold_t, count),
	  .def = "500", .min = 0, .max = 1000000000, .help = "an export deleting more objects than this stops (0: no limit)" },
	{ .name = "percent", .type = LOOM_CFG_INT, .offset = offsetof(loom_agentcfg_threshold_t, percent),
	  .def = "50", .min = 0, .max = 100, .help = "... or more than this share of the connector space (0: no limit)" },
	{ NULL }
};
static const loom_cfg_table_t threshold_table = { .what = "deletion_threshold", .keys = threshold_keys };

static const loom_cfg_key_t live_keys[] = {
	{ .name = "enabled", .type = LOOM_CFG_BOOL, .offset = offsetof(loom_agentcfg_live_t, enabled),
	  .def = "false", .help = "stream changes to the engine as they happen (ldap: refreshAndPersist; ad: DirSync poll)" },
	{ .name = "poll", .type = LOOM_CFG_DURATION, .offset = offsetof(loom_agentcfg_live_t, poll_ms),
	  .def = "2s", .min = 100, .max = 3600000, .help = "Active Directory: DirSync poll interval" },
	{ .name = "keepalive", .type = LOOM_CFG_DURATION, .offset = offsetof(loom_agentcfg_live_t, keepalive_ms),
	  .def = "5s", .min = 100, .max = 3600000, .help = "an empty batch this often when nothing changes (the engine "
	  "reopens a stream silent for the agent's timeout)" },
	{ .name = "window", .type = LOOM_CFG_DURATION, .offset = offsetof(loom_agentcfg_live_t, window_ms),
	  .def = "0ms", .min = 0, .max = 3600000, .help = "engine: live changes are coalesced this long before the sync "
	  "(changes that arrive while a sync or export runs wait for it anyway)" },
	{ .name = "sync", .type = LOOM_CFG_BOOL, .offset = offsetof(loom_agentcfg_live_t, sync),
	  .def = "true", .help = "engine: delta-sync this agent after live changes" },
	{ .name = "export", .type = LOOM_CFG_STRLIST, .offset = offsetof(loom_agentcfg_live_t, export),
	  .help = "engine: agents exported to after the live sync (their pending exports are sent)" },
	{ NULL }
};
static const loom_cfg_table_t live_table = { .what = "live", .keys = live_keys };

static const loom_cfg_key_t pwsync_keys[] = {
	{ .name = "enabled", .type = LOOM_CFG_BOOL, .offset = offsetof(loom_agentcfg_pwsync_t, enabled),
	  .def = "false", .help = "engine: set synchronized passwords on this agent's connectors (the agent needs its "
	  "key pair ma.NAME.key; file agents cannot take passwords and are skipped with a note)" },
	{ .name = "match", .type = LOOM_CFG_STRLIST, .offset = offsetof(loom_agentcfg_pwsync_t, match),
	  .def = "[anchor, dn]", .flags = LOOM_CFG_NONEMPTY,
	  .help = "when this agent is the source of a change: how its account is found in the connector space, "
	  "tried in order: anchor, dn, account (account_attribute)" },
	{ .name = "account_attribute", .type = LOOM_CFG_STRING, .offset = offsetof(loom_agentcfg_pwsync_t, account_attribute),
	  .help = "match account: the connector-space attribute holding the account name (uid, sAMAccountName)" },
	{ .name = "retry_interval", .type = LOOM_CFG_DURATION, .offset = offsetof(loom_agentcfg_pwsync_t, retry_interval_ms),
	  .def = "10s", .min = 100, .max = 86400000, .help = "first retry after a retryable failure; doubles up to retry_max" },
	{ .name = "retry_max", .type = LOOM_CFG_DURATION, .offset = offsetof(loom_agentcfg_pwsync_t, retry_max_ms),
	  .def = "10m", .min = 100, .max = 86400000, .help = "longest wait between two attempts" },
	{ .name = "max_attempts", .type = LOOM_CFG_INT, .offset = offsetof(loom_agentcfg_pwsync_t, max_attempts),
	  .def = "10", .min = 1, .max = 1000, .help = "attempts before the target fails for that change" },
	{ .name = "timeout", .type = LOOM_CFG_DURATION, .offset = offsetof(loom_agentcfg_pwsync_t, timeout_ms),
	  .def = "30s", .min = 100, .max = 3600000, .help = "an attempt the agent has not answered in this time failed (retryable)" },
	{ NULL }
};
static const loom_cfg_table_t pwsync_table = { .what = "password_sync", .keys = pwsync_keys };

static const loom_cfg_key_t agent_keys[] = {
	{ .name = "type", .type = LOOM_CFG_ENUM, .offset = offsetof(loom_agentcfg_t, type),
	  .flags = LOOM_CFG_REQUIRED, .choices = agent_types, .help = "kind of connected system" },
	{ .name = "object_type", .type = LOOM_CFG_STRING, .offset = offsetof(loom_agentcfg_t, object_type),
	  .help = "object type of imported objects (default: csv 'person'; ldif the entry's last objectClass "
	          "other than top)" },
	{ .name = "anchor", .type = LOOM_CFG_STRING, .offset = offsetof(loom_agentcfg_t, anchor),
	  .flags = LOOM_CFG_NONEMPTY,
	  .help = "attribute whose value identifies an object for life, or dn (file and ext: required; ldap: entryUUID, "
		  "objectGUID for ad)" },
	{ .name = "import_batch", .type = LOOM_CFG_INT, .offset = offsetof(loom_agentcfg_t, import_batch),
	  .def = "500", .min = 1, .max = 100000, .help = "objects per import batch" },
	{ .name = "import_credit", .type = LOOM_CFG_INT, .offset = offsetof(loom_agentcfg_t, import_credit),
	  .def = "8", .min = 1, .max = 1000, .help = "import batches an agent may send ahead" },
	{ .name = "error_limit", .type = LOOM_CFG_INT, .offset = offsetof(loom_agentcfg_t, error_limit),
	  .def = "1000", .min = 0, .max = 1000000000, .help = "object errors after which a run stops (0: no limit)" },
	{ .name = "timeout", .type = LOOM_CFG_DURATION, .offset = offsetof(loom_agentcfg_t, timeout_ms),
	  .def = "30s", .min = 500, .max = 86400000, .help = "agent silence that fails a run" },
	{ .name = "references", .type = LOOM_CFG_STRLIST, .offset = offsetof(loom_agentcfg_t, references),
	  .help = "reference attributes (manager, member): values name other objects of this system by DN "
	          "(or by anchor), resolved through the metaverse" },
	{ .name = "deletion_threshold", .type = LOOM_CFG_SECTION, .offset = offsetof(loom_agentcfg_t, deletion_threshold),
	  .sub = &threshold_table, .help = "export delete safety: past it an export stops and changes nothing" },
	{ .name = "file", .type = LOOM_CFG_SECTION, .offset = offsetof(loom_agentcfg_t, file),
	  .sub = &file_table, .help = "type file: the file and its format" },
	{ .name = "ldap", .type = LOOM_CFG_SECTION, .offset = offsetof(loom_agentcfg_t, ldap),
	  .sub = &loom_agentcfg_ldap_table, .help = "type ldap: the directory server (loom-ma-ldap --help-config)" },
	{ .name = "policy", .type = LOOM_CFG_SECTION, .offset = offsetof(loom_agentcfg_t, policy),
	  .sub = &loom_agentcfg_policy_table, .help = "type policy: the policy service as a connected system (docs/policy.md)" },
	{ .name = "ext", .type = LOOM_CFG_SECTION, .offset = offsetof(loom_agentcfg_t, ext),
	  .sub = &loom_agentcfg_ext_table, .help = "type ext: a program that speaks the agent protocol as JSON lines (docs/agents.md)" },
	{ .name = "sql", .type = LOOM_CFG_SECTION, .offset = offsetof(loom_agentcfg_t, sql),
	  .sub = &loom_agentcfg_sql_table, .help = "type sql: a PostgreSQL or SQLite database (docs/agents.md)" },
	{ .name = "live", .type = LOOM_CFG_SECTION, .offset = offsetof(loom_agentcfg_t, live),
	  .sub = &live_table, .help = "live mode: changes stream to the engine as they happen, then sync and export" },
	{ .name = "password_sync", .type = LOOM_CFG_SECTION, .offset = offsetof(loom_agentcfg_t, password_sync),
	  .sub = &pwsync_table, .help = "password synchronization: target of synchronized passwords, and how a "
	  "change from this agent finds its account (docs/pcns.md)" },
	{ NULL }
};
const loom_cfg_table_t loom_agentcfg_table = { .what = "agent", .keys = agent_keys };

int loom_agentcfg_load(const char *path, loom_agentcfg_t *cfg, loom_cfg_diags_t *diags)
{
	int rc = loom_config_load_file(path, &loom_agentcfg_table, cfg, diags);
	cfg->path = loom_strdup(path);
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	size_t n = strlen(base);
	if (n > 5 && strcmp(base + n - 5, ".yaml") == 0)
		n -= 5;
	cfg->name = loom_strndup(base, n);
	if (rc == 0 && cfg->type == LOOM_AGENT_FILE && cfg->file.path == NULL) {
		loom_cfg_diag_add(diags, path, "file",
		    loom_sprintf("%s: key 'file': missing required section for type file", path));
		rc = -1;
	}
	if (rc == 0 && cfg->type == LOOM_AGENT_FILE && cfg->anchor == NULL) {
		loom_cfg_diag_add(diags, path, "anchor",
		    loom_sprintf("%s:1:1: key 'anchor': missing required key for type file", path));
		rc = -1;
	}
	if (rc == 0 && cfg->type == LOOM_AGENT_LDAP && cfg->ldap.uri.text == NULL) {
		loom_cfg_diag_add(diags, path, "ldap",
		    loom_sprintf("%s: key 'ldap': missing required section for type ldap", path));
		rc = -1;
	}
	if (rc == 0 && cfg->type == LOOM_AGENT_EXT && cfg->ext.command.n == 0) {
		loom_cfg_diag_add(diags, path, "ext.command",
		    loom_sprintf("%s: key 'ext.command': missing required key for type ext (the program to run)", path));
		rc = -1;
	}
	if (rc == 0 && cfg->type == LOOM_AGENT_EXT && cfg->anchor == NULL) {
		loom_cfg_diag_add(diags, path, "anchor",
		    loom_sprintf("%s:1:1: key 'anchor': missing required key for type ext", path));
		rc = -1;
	}
	if (rc == 0 && cfg->type == LOOM_AGENT_EXT && cfg->ext.dir == NULL) {
		const char *slash = strrchr(path, '/');
		cfg->ext.dir = slash ? loom_strndup(path, (size_t)(slash - path)) : loom_strdup(".");
	}
	if (rc == 0 && cfg->type == LOOM_AGENT_SQL && cfg->sql.tables.n == 0) {
		loom_cfg_diag_add(diags, path, "sql",
		    loom_sprintf("%s: key 'sql': missing required section for type sql (driver and tables)", path));
		rc = -1;
	}
	if (rc == 0 && cfg->type == LOOM_AGENT_SQL && cfg->sql.driver == LOOM_SQL_POSTGRESQL && cfg->sql.conninfo == NULL) {
		loom_cfg_diag_add(diags, path, "sql.conninfo",
		    loom_sprintf("%s: key 'sql.conninfo': missing required key for driver postgresql", path));
		rc = -1;
	}
	if (rc == 0 && cfg->type == LOOM_AGENT_SQL && cfg->sql.driver == LOOM_SQL_SQLITE && cfg->sql.database == NULL) {
		loom_cfg_diag_add(diags, path, "sql.database",
		    loom_sprintf("%s: key 'sql.database': missing required key for driver sqlite", path));
		rc = -1;
	}
	if (rc == 0 && cfg->type == LOOM_AGENT_SQL) {
		loom_agentcfg_sql_table_t *t = cfg->sql.tables.v;
		for (size_t i = 0; i < cfg->sql.tables.n; i++) {
			if (t[i].anchor == NULL && cfg->anchor == NULL) {
				loom_cfg_diag_add(diags, path, "anchor",
				    loom_sprintf("%s: key 'sql.tables[%zu].anchor': missing: give the table's anchor column, or "
						 "the agent's anchor", path, i));
				rc = -1;
			} else if (t[i].anchor == NULL) {
				t[i].anchor = loom_strdup(cfg->anchor);
			}
		}
		if (rc == 0 && cfg->anchor == NULL)
			cfg->anchor = loom_strdup(t[0].anchor);
	}
	if (rc == 0 && cfg->type == LOOM_AGENT_LDAP && cfg->anchor == NULL)
		cfg->anchor = loom_strdup(cfg->ldap.directory == LOOM_LDAP_AD ? "objectGUID" : "entryUUID");
	/* The policy service names its objects: anchor and DN are the ObjectID. */
	if (rc == 0 && cfg->type == LOOM_AGENT_POLICY && cfg->anchor && strcmp(cfg->anchor, "dn") != 0) {
		loom_cfg_diag_add(diags, path, "anchor",
		    loom_sprintf("%s: key 'anchor': bad value '%s': a policy agent anchors on dn (the ObjectID)", path,
			cfg->anchor));
		rc = -1;
	}
	if (rc == 0 && cfg->type == LOOM_AGENT_POLICY && cfg->anchor == NULL)
		cfg->anchor = loom_strdup("dn");
	if (rc == 0 && cfg->live.enabled && cfg->type != LOOM_AGENT_LDAP) {
		loom_cfg_diag_add(diags, path, "live.enabled",
		    loom_sprintf("%s: key 'live.enabled': live mode is for type ldap (a file agent has no change "
			"notification)", path));
		rc = -1;
	}
	for (size_t i = 0; rc == 0 && i < cfg->password_sync.match.n; i++) {
		const char *m = cfg->password_sync.match.v[i];
		if (strcmp(m, "anchor") != 0 && strcmp(m, "dn") != 0 && strcmp(m, "account") != 0) {
			loom_cfg_diag_add(diags, path, "password_sync.match",
			    loom_sprintf("%s: key 'password_sync.match': bad value '%s': expected anchor, dn or account", path, m));
			rc = -1;
		} else if (strcmp(m, "account") == 0 && cfg->password_sync.account_attribute == NULL) {
			loom_cfg_diag_add(diags, path, "password_sync.account_attribute",
			    loom_sprintf("%s: key 'password_sync.account_attribute': missing: match 'account' needs the "
				"attribute that holds the account name", path));
			rc = -1;
		}
	}
	if (rc == 0 && cfg->type == LOOM_AGENT_FILE && cfg->file.format == LOOM_FILE_FIXED && cfg->file.fixed.columns.n == 0) {
		loom_cfg_diag_add(diags, path, "file.fixed.columns",
		    loom_sprintf("%s: key 'file.fixed.columns': format fixed needs its column layout", path));
		rc = -1;
	}
	if (rc == 0 && cfg->file.avp.separator &&
	    (strlen(cfg->file.avp.separator) != 1 || strchr(" \t\r\n#", cfg->file.avp.separator[0]))) {
		loom_cfg_diag_add(diags, path, "file.avp.separator",
		    loom_sprintf("%s: key 'file.avp.separator': bad value '%s': expected one character other than "
			"space, tab, line breaks and #", path, cfg->file.avp.separator));
		rc = -1;
	}
	if (rc == 0 && cfg->file.csv.delimiter && strlen(cfg->file.csv.delimiter) != 1) {
		loom_cfg_diag_add(diags, path, "file.csv.delimiter",
		    loom_sprintf("%s: key 'file.csv.delimiter': bad value '%s': expected one character", path,
			cfg->file.csv.delimiter));
		rc = -1;
	}
	return rc;
}

bool loom_agentcfg_is_ref(const loom_agentcfg_t *cfg, const char *attr)
{
	for (size_t i = 0; i < cfg->references.n; i++)
		if (strcasecmp(cfg->references.v[i], attr) == 0)
			return true;
	return false;
}

void loom_agentcfg_release(loom_agentcfg_t *cfg)
{
	loom_config_release(&loom_agentcfg_table, cfg);
	free(cfg->name);
	free(cfg->path);
	cfg->name = cfg->path = NULL;
}

static int load_one(const char *path, void *element, loom_cfg_diags_t *diags)
{
	return loom_agentcfg_load(path, element, diags);
}

int loom_agentcfg_load_dir(const char *dir, loom_agentcfg_t **ret, size_t *ret_n, loom_cfg_diags_t *diags)
{
	void *v;
	int rc = loom_config_load_dir(dir, sizeof **ret, load_one, &v, ret_n, diags);
	*ret = v;
	return rc;
}

void loom_agentcfg_free_all(loom_agentcfg_t **v, size_t n)
{
	if (*v == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		loom_agentcfg_release(&(*v)[i]);
	free(*v);
	*v = NULL;
}

char *loom_agentcfg_dir(const char *deploy_path)
{
	const char *slash = strrchr(deploy_path, '/');
	if (slash == NULL)
		return loom_strdup("agents");
	return loom_sprintf("%.*s/agents", (int)(slash - deploy_path), deploy_path);
}

int loom_agentcfg_load_named(const char *deploy_path, const char *name, int type, loom_agentcfg_t *cfg,
    char **ret_error)
{
	if (name == NULL) {
		*ret_error = loom_strdup("--agent NAME is required (the agent's file is config/agents/NAME.yaml)");
		return -1;
	}
	char *dir = loom_agentcfg_dir(deploy_path);
	char *path = loom_sprintf("%s/%s.yaml", dir, name);
	free(dir);
	loom_cfg_diags_t diags = { 0 };
	int rc = loom_agentcfg_load(path, cfg, &diags);
	if (rc < 0) {
		*ret_error = loom_cfg_diags_join(&diags, "\n");
	} else if (cfg->type != type) {
		*ret_error = loom_sprintf("%s: agent type is not %s: run the agent for its type", path, agent_types[type]);
		rc = -1;
	}
	loom_cfg_diags_release(&diags);
	free(path);
	return rc;
}
