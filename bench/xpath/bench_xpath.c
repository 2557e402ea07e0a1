/* bench_xpath.c - loom-bench-xpath: FIM XPath filters per second against
 * persons held by the in-memory provider (lib/loom_xpath_mem.h).
 *
 * Builds --persons people (default 200,000) in one process: AccountName
 * userNNNNNNN (unique), DisplayName "<first> <last>" from small name lists,
 * EmployeeType one of four, EmployeeID NNNNNNN, a Manager (every person but
 * the first 100 reports to one of the first 100) and, on one person in
 * 1,000, no DisplayName. Then, for each filter below, compiles it once,
 * evaluates it once untimed (so the first evaluation pays for building the
 * attribute index it uses, reported apart), and evaluates it again and again
 * into the same result for --seconds, printing evaluations per second and
 * the resources selected.
 *
 * It is a program to run by hand; it fails only when a filter does not
 * compile or evaluate, or selects a count other than the one the data
 * makes, never for being slow.
 */
#include "bench_common.h"
#include "loom_alloc.h"
#include "loom_xpath.h"
#include "loom_xpath_mem.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROG "loom-bench-xpath"

static const char *const firsts[] = { "Ada", "Alan", "Grace", "Edsger", "Barbara", "Donald", "Ken", "Dennis",
	"Frances", "John", "Margaret", "Niklaus", "Tony", "Leslie", "Radia", "Butler" };
static const char *const lasts[] = { "Lovelace", "Turing", "Hopper", "Dijkstra", "Liskov", "Knuth", "Thompson",
	"Ritchie", "Allen", "Backus", "Hamilton", "Wirth", "Hoare", "Lamport", "Perlman", "Lampson", "Smith",
	"Smithson", "Goldsmith", "Johnson" };
static const char *const emp_types[] = { "Full Time Employee", "Contractor", "Intern", "Vendor" };

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

static Loom__Value *value(int type, const char *s, int64_t i)
{
	Loom__Value *v = loom_malloc(sizeof *v);
	loom__value__init(v);
	switch (type) {
	case 1: v->v_case = LOOM__VALUE__V_STR; v->str = loom_strdup(s); break;
	case 2: v->v_case = LOOM__VALUE__V_INT; v->int_ = i; break;
	case 6: v->v_case = LOOM__VALUE__V_REF; v->ref = loom_strdup(s); break;
	}
	return v;
}

static Loom__Attr *attr(const char *name, Loom__Value *v)
{
	Loom__Attr *a = loom_malloc(sizeof *a);
	loom__attr__init(a);
	a->name = loom_strdup(name);
	a->values = loom_malloc(sizeof *a->values);
	a->values[0] = v;
	a->n_values = 1;
	return a;
}

typedef struct filter_case {
	const char *label;   /* what it measures */
	const char *text;    /* the filter */
	long long want;      /* resources it must select, -1: computed by the builder */
} filter_case_t;

int main(int argc, char **argv)
{
	long long persons = 200000, seconds = 2;
	static const struct option longopts[] = {
		{ "persons", required_argument, NULL, 'p' },
		{ "seconds", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "p:s:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'p':
			if (bench_parse_num(PROG, "persons", optarg, 1000, 10000000, &persons) < 0)
				return 2;
			break;
		case 's':
			if (bench_parse_num(PROG, "seconds", optarg, 1, 3600, &seconds) < 0)
				return 2;
			break;
		case 'h':
			printf("usage: " PROG " [--persons N] [--seconds S]\n"
			    "FIM XPath filters per second against N in-memory persons (default 200000),\n"
			    "each filter evaluated repeatedly for S seconds (default 2).\n");
			return 0;
		default:
			fprintf(stderr, PROG ": see --help\n");
			return 2;
		}
	}
	bench_signals_install();

	/* the people */
	int64_t t0 = bench_now_ns();
	loom_xpath_mem_t *m = loom_xpath_mem_new();
	long long smiths = 0, contractors = 0, no_dn = 0, reports0 = 0;
	char id[64], mgr[64], acct[32], dn[64];
	for (long long i = 0; i < persons; i++) {
		snprintf(id, sizeof id, "00000000-0000-4000-8000-%012lld", i);
		snprintf(acct, sizeof acct, "user%07lld", i);
		const char *first = firsts[i % N_ELEMS(firsts)], *last = lasts[(i / N_ELEMS(firsts)) % N_ELEMS(lasts)];
		snprintf(dn, sizeof dn, "%s %s", first, last);
		Loom__Attr **a = loom_malloc(6 * sizeof *a);
		size_t n = 0;
		a[n++] = attr("AccountName", value(1, acct, 0));
		if (i % 1000 != 999) {
			a[n++] = attr("DisplayName", value(1, dn, 0));
			if (strncmp(last, "Smith", 5) == 0) /* Smith and Smithson: a word prefix */
				smiths++;
		} else {
			no_dn++;
		}
		a[n++] = attr("EmployeeType", value(1, emp_types[i % N_ELEMS(emp_types)], 0));
		contractors += i % N_ELEMS(emp_types) == 1;
		a[n++] = attr("EmployeeID", value(2, NULL, i));
		if (i >= 100) {
			snprintf(mgr, sizeof mgr, "00000000-0000-4000-8000-%012lld", i % 100);
			a[n++] = attr("Manager", value(6, mgr, 0));
			reports0 += i % 100 == 0;
		}
		char *err = NULL;
		if (loom_xpath_mem_add(m, "Person", id, a, n, NULL, &err) < 0) {
			fprintf(stderr, PROG ": %s\n", err);
			return 1;
		}
	}
	int64_t t1 = bench_now_ns();
	char buf[32], buf2[32];
	printf("%s persons built in %.2f s\n", bench_fmt_count(buf, sizeof buf, (double)persons), (t1 - t0) / 1e9);

	char eq[128];
	snprintf(eq, sizeof eq, "/Person[AccountName = 'user%07lld']", persons / 2);
	char and2[160];
	long long pick = persons / 2 + 1 - ((persons / 2 + 1) % 4) + 1; /* i % 4 == 1: a contractor */
	snprintf(and2, sizeof and2, "/Person[EmployeeType = 'Contractor' and AccountName = 'user%07lld']", pick);
	filter_case_t cases[] = {
		{ "indexed equality", eq, 1 },
		{ "contains (word prefix, scan)", "/Person[contains(DisplayName, 'Smith')]", smiths },
		{ "starts-with presence idiom (scan)", "/Person[not(starts-with(DisplayName, '%'))]", no_dn },
		{ "indexed equality on a large value set", "/Person[EmployeeType = 'Contractor']", contractors },
		{ "and of two indexed equalities", and2, 1 },
		{ "reference, reverse (index)",
		  "/Person[Manager = /Person[AccountName = 'user0000000']]", reports0 },
		{ "reference, forward (dereference)", "/Person[AccountName = 'user0000150']/Manager", 1 },
		{ "integer range (scan)", "/Person[EmployeeID >= 1000 and EmployeeID < 2000]", 1000 },
	};
	printf("%-40s %14s %12s %10s %12s\n", "filter", "filters/s", "ms/filter", "selected", "first (ms)");
	int status = 0;
	for (size_t k = 0; k < N_ELEMS(cases) && !bench_interrupted(); k++) {
		filter_case_t *fc = &cases[k];
		loom_xpath_t *x = NULL;
		loom_xpath_error_t e;
		if (loom_xpath_compile(fc->text, NULL, &x, &e) < 0) {
			fprintf(stderr, PROG ": %s: %s\n", fc->text, e.text);
			return 1;
		}
		loom_xpath_provider_t p;
		loom_xpath_mem_provider(m, &p);
		loom_xpath_result_t r;
		loom_xpath_result_init(&r);
		int64_t f0 = bench_now_ns();
		if (loom_xpath_eval(x, &p, NULL, &r, &e) < 0) {
			fprintf(stderr, PROG ": %s: %s\n", fc->text, e.text);
			return 1;
		}
		int64_t f1 = bench_now_ns();
		if ((long long)r.n != fc->want) {
			fprintf(stderr, PROG ": %s selected %zu persons, the data has %lld\n", fc->text, r.n, fc->want);
			status = 1;
		}
		long long evals = 0;
		int64_t start = bench_now_ns(), now = start, end = start + seconds * 1000000000LL;
		while (now < end && !bench_interrupted()) {
			for (int i = 0; i < 16; i++) {
				if (loom_xpath_eval(x, &p, NULL, &r, &e) < 0) {
					fprintf(stderr, PROG ": %s: %s\n", fc->text, e.text);
					return 1;
				}
				evals++;
			}
			now = bench_now_ns();
		}
		double secs = (now - start) / 1e9;
		printf("%-40s %14s %12.4f %10s %12.2f\n", fc->label, bench_fmt_count(buf, sizeof buf, evals / secs),
		    secs * 1000 / evals, bench_fmt_count(buf2, sizeof buf2, (double)r.n), (f1 - f0) / 1e6);
		printf("    %s\n", fc->text);
		loom_xpath_result_release(&r);
		loom_xpath_destroy(&x);
	}
	if (bench_interrupted()) {
		char *why = bench_interrupted_text();
		fprintf(stderr, PROG ": %s\n", why);
		free(why);
		status = 1;
	}
	loom_xpath_mem_destroy(&m);
	return status;
}
