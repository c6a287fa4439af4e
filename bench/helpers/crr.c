/*
 * TCP_CRR-style client and server for the benches, in C so that the kernel's connection path and
 * not a language runtime dominates what is measured (a Node client spends ~300 µs of CPU per
 * connection, which hides differences of a few µs).
 *
 *   crr serve PORT
 *       accepts on 0.0.0.0:PORT one connection at a time: reads the request, answers 32 B (the
 *       local address the connection reached, space padded) and closes first (TIME_WAIT stays on
 *       the server's side). Prints "listening" once ready; runs until killed.
 *
 *   crr connect HOSTS PORT N WARMUP SRC BASEPORT
 *       WARMUP + N connections one after the other to the comma-separated IPv4 HOSTS in turn, each
 *       from SRC:(BASEPORT + k) (a 4-tuple never used before): connect, 32 B request, read the
 *       answer to EOF, close. Prints one JSON line: connections per second, latency p50 / p99
 *       (µs, connect to close), CPU per connection (µs, user + system of this thread around each
 *       connection: the kernel's connect path runs in it) and how many answers each backend gave, over the N
 *       counted connections. Exits 1 at the first failure, and after 300 s at the latest.
 *       The rate is that of the connections' own time (connect to close), the slowest 5% left
 *       out (see rate()).
 *
 *   crr pair HOSTS_A PORT_A SRC_A BASE_A HOSTS_B PORT_B SRC_B BASE_B N WARMUP
 *       the same for two targets in one process, interleaved connection by connection (A B B A,
 *       A B B A, ...: neither side always goes first), so that both see the same machine: the
 *       load of a shared machine moves within seconds, and two separate runs see different
 *       loads. Per side: its rate, p50 / p99 and CPU per connection (this thread's CPU clock
 *       around each connection). Prints {"a":{...},"b":{...}}.
 *
 *   crr echo PORT
 *       accepts on 0.0.0.0:PORT one connection at a time and sends back whatever it reads until the
 *       client closes. Prints "listening" once ready; runs until killed.
 *
 *   crr pingpong HOST PORT N WARMUP
 *       one connection to HOST:PORT: WARMUP + N exchanges of 32 B (write, read the echo back whole),
 *       each timed from write to the echo's last byte. Prints {"p50","p99","n"} (µs) over the N
 *       counted ones: TCP request/response latency with no language runtime between the packets.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MSG 32
#define MAX_HOSTS 64

static double now_us(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static double thread_cpu_us(void)
{
	struct timespec t;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/*
 * Connections per second of the connections' own time (sorted latencies), the slowest 5% left
 * out: a connection preempted by other work on a shared machine waits milliseconds, which says
 * nothing about the path (p99 shows them).
 */
static double rate(const double *sorted, int n)
{
	int kept = n - n / 20;
	double busy = 0;

	for (int i = 0; i < kept; i++)
		busy += sorted[i];
	return kept / (busy / 1e6);
}

/* A socket listening on 0.0.0.0:`port` ("listening" printed), or -1. */
static int listen_on(int port, int backlog)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	int one = 1, l = socket(AF_INET, SOCK_STREAM, 0);

	signal(SIGPIPE, SIG_IGN);
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, backlog)) {
		perror("listen");
		return -1;
	}
	printf("listening\n");
	fflush(stdout);
	return l;
}

static int serve(int port)
{
	int one = 1, l = listen_on(port, 1024);

	if (l < 0)
		return 1;
	for (;;) {
		struct sockaddr_in me;
		socklen_t len = sizeof(me);
		char buf[MSG * 2], out[MSG + 1];
		int c = accept(l, NULL, NULL);

		if (c < 0)
			continue;
		setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (read(c, buf, sizeof(buf)) > 0 && !getsockname(c, (struct sockaddr *)&me, &len)) {
			snprintf(out, sizeof(out), "%-32s", inet_ntoa(me.sin_addr));
			if (write(c, out, MSG) != MSG)
				perror("write");
		}
		close(c);
	}
}

static int fail(int k, const struct sockaddr_in *d, const char *what)
{
	fprintf(stderr, "connection %d to %s: %s\n", k, inet_ntoa(d->sin_addr), what);
	return 1;
}

/* One target (connect), or one side of a pair: its hosts, source, and what its connections measured. */
struct side {
	struct sockaddr_in dst[MAX_HOSTS], src;
	char names[MAX_HOSTS][MSG + 1];
	int counts[MAX_HOSTS], nd, nn, base, k;
	double *lat, cpu;
};

static int side_init(struct side *s, char *hosts, int port, const char *src_ip, int base, int n)
{
	memset(s, 0, sizeof(*s));
	s->src.sin_family = AF_INET;
	s->base = base;
	s->lat = calloc(n, sizeof(double));
	for (char *h = strtok(hosts, ","); h; h = strtok(NULL, ",")) {
		if (s->nd == MAX_HOSTS) {
			fprintf(stderr, "more than %d hosts\n", MAX_HOSTS);
			return 2;
		}
		if (inet_pton(AF_INET, h, &s->dst[s->nd].sin_addr) != 1) {
			fprintf(stderr, "not an IPv4 address: %s\n", h);
			return 2;
		}
		s->dst[s->nd].sin_family = AF_INET;
		s->dst[s->nd].sin_port = htons(port);
		s->nd++;
	}
	if (!s->nd || !s->lat || inet_pton(AF_INET, src_ip, &s->src.sin_addr) != 1) {
		fprintf(stderr, "bad arguments\n");
		return 2;
	}
	return 0;
}

/* One connection of side s (its k-th): counted unless warming up. */
static int side_connect(struct side *s, int warm, const char *msg)
{
	const struct sockaddr_in *d = &s->dst[s->k % s->nd];
	char buf[MSG * 2 + 1];
	int fd, got = 0, r, i, one = 1, k = s->k++;
	double start = now_us(), c = thread_cpu_us(), lat;

	fd = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	s->src.sin_port = htons(s->base + k);
	if (bind(fd, (struct sockaddr *)&s->src, sizeof(s->src)))
		return fail(k, d, strerror(errno));
	if (connect(fd, (const struct sockaddr *)d, sizeof(*d)))
		return fail(k, d, strerror(errno));
	if (write(fd, msg, MSG) != MSG)
		return fail(k, d, "short write");
	while ((r = read(fd, buf + got, sizeof(buf) - 1 - got)) > 0)
		got += r;
	if (r < 0)
		return fail(k, d, strerror(errno));
	close(fd);
	if (got != MSG)
		return fail(k, d, "answer is not 32 B");
	if (k < warm)
		return 0;
	lat = now_us() - start;
	s->lat[k - warm] = lat;
	s->cpu += thread_cpu_us() - c;
	for (r = MSG; r > 0 && buf[r - 1] == ' '; r--)
		;
	buf[r] = 0;
	for (i = 0; i < s->nn && strcmp(s->names[i], buf); i++)
		;
	if (i == s->nn) {
		if (s->nn == MAX_HOSTS)
			return fail(k, d, "too many distinct backends");
		strcpy(s->names[s->nn++], buf);
	}
	s->counts[i]++;
	return 0;
}

static void side_print(const char *name, struct side *s, int n)
{
	qsort(s->lat, n, sizeof(double), cmp);
	if (name)
		printf("\"%s\":", name);
	printf("{\"cps\":%.1f,\"p50\":%.1f,\"p99\":%.1f,\"cpuUs\":%.2f,\"backends\":{", rate(s->lat, n), s->lat[n / 2], s->lat[(int)(n * 0.99) < n ? (int)(n * 0.99) : n - 1],
	       s->cpu / n);
	for (int i = 0; i < s->nn; i++)
		printf("%s\"%s\":%d", i ? "," : "", s->names[i], s->counts[i]);
	printf("}}");
}

static int connect_loop(char *hosts, int port, int n, int warm, const char *src_ip, int base)
{
	static struct side s;
	char msg[MSG];
	int r;

	if (n < 1 || (r = side_init(&s, hosts, port, src_ip, base, n)))
		return n < 1 ? 2 : r;
	memset(msg, 1, sizeof(msg));
	alarm(300);
	for (int k = 0; k < warm + n; k++)
		if ((r = side_connect(&s, warm, msg)))
			return r;
	side_print(NULL, &s, n);
	printf("\n");
	return 0;
}

static int pair_loop(char **argv, int n, int warm)
{
	static struct side a, b;
	char msg[MSG];
	int r;

	if (n < 1 || (r = side_init(&a, argv[0], atoi(argv[1]), argv[2], atoi(argv[3]), n)) ||
	    (r = side_init(&b, argv[4], atoi(argv[5]), argv[6], atoi(argv[7]), n)))
		return n < 1 ? 2 : r;
	memset(msg, 1, sizeof(msg));
	alarm(600);
	for (int k = 0; k < 2 * (warm + n); k++) {
		/* A B B A: each side first in half of the pairs */
		struct side *s = (k % 4 == 0 || k % 4 == 3) ? &a : &b;
		if ((r = side_connect(s, warm, msg)))
			return r;
	}
	printf("{");
	side_print("a", &a, n);
	printf(",");
	side_print("b", &b, n);
	printf("}\n");
	return 0;
}

static int echo(int port)
{
	int one = 1, l = listen_on(port, 16);

	if (l < 0)
		return 1;
	for (;;) {
		char buf[4096];
		ssize_t n;
		int c = accept(l, NULL, NULL);

		if (c < 0)
			continue;
		setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		while ((n = read(c, buf, sizeof(buf))) > 0)
			if (write(c, buf, n) != n)
				break;
		close(c);
	}
}

static int pingpong(const char *host, int port, int n, int warm)
{
	struct sockaddr_in d = { .sin_family = AF_INET, .sin_port = htons(port) };
	char msg[MSG], buf[MSG];
	double *lat = calloc(n, sizeof(double));
	int one = 1, c = socket(AF_INET, SOCK_STREAM, 0);

	memset(msg, 'x', MSG);
	alarm(300);
	if (n < 1 || !lat || c < 0 || inet_pton(AF_INET, host, &d.sin_addr) != 1 ||
	    connect(c, (struct sockaddr *)&d, sizeof(d))) {
		perror("pingpong: connect");
		return 1;
	}
	setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	for (int k = 0; k < warm + n; k++) {
		double t0 = now_us();
		int got = 0;

		if (write(c, msg, MSG) != MSG) {
			perror("pingpong: write");
			return 1;
		}
		while (got < MSG) {
			ssize_t r = read(c, buf + got, MSG - got);

			if (r <= 0) {
				fprintf(stderr, "pingpong: connection closed after %d exchanges\n", k);
				return 1;
			}
			got += r;
		}
		if (k >= warm)
			lat[k - warm] = now_us() - t0;
	}
	close(c);
	qsort(lat, n, sizeof(double), cmp);
	printf("{\"p50\":%.2f,\"p99\":%.2f,\"n\":%d}\n", lat[n / 2], lat[(int)(n * 0.99)], n);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "echo"))
		return echo(atoi(argv[2]));
	if (argc == 6 && !strcmp(argv[1], "pingpong"))
		return pingpong(argv[2], atoi(argv[3]), atoi(argv[4]), atoi(argv[5]));
	if (argc == 12 && !strcmp(argv[1], "pair"))
		return pair_loop(argv + 2, atoi(argv[10]), atoi(argv[11]));
	if (argc == 3 && !strcmp(argv[1], "serve"))
		return serve(atoi(argv[2]));
	if (argc == 8 && !strcmp(argv[1], "connect"))
		return connect_loop(argv[2], atoi(argv[3]), atoi(argv[4]), atoi(argv[5]), argv[6], atoi(argv[7]));
	fprintf(stderr, "usage: crr serve PORT | crr connect HOSTS PORT N WARMUP SRC BASEPORT | crr pair "
			"HOSTS_A PORT_A SRC_A BASE_A HOSTS_B PORT_B SRC_B BASE_B N WARMUP | crr echo PORT | "
			"crr pingpong HOST PORT N WARMUP\n");
	return 2;
}
