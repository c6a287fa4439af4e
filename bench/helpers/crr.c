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
 *       (µs, connect to close), this process's CPU per connection (µs, user + system: the
 *       kernel's connect path runs in it) and how many answers each backend gave, over the N
 *       counted connections. Exits 1 at the first failure, and after 300 s at the latest.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
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

static double cpu_us(void)
{
	struct rusage r;
	getrusage(RUSAGE_SELF, &r);
	return (r.ru_utime.tv_sec + r.ru_stime.tv_sec) * 1e6 + r.ru_utime.tv_usec + r.ru_stime.tv_usec;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static int serve(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	int one = 1, l = socket(AF_INET, SOCK_STREAM, 0);

	signal(SIGPIPE, SIG_IGN);
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, 1024)) {
		perror("serve");
		return 1;
	}
	printf("listening\n");
	fflush(stdout);
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

static int connect_loop(char *hosts, int port, int n, int warm, const char *src_ip, int base)
{
	struct sockaddr_in dst[MAX_HOSTS], src = { .sin_family = AF_INET };
	char names[MAX_HOSTS][MSG + 1], msg[MSG];
	int counts[MAX_HOSTS] = { 0 }, nd = 0, nn = 0, one = 1;
	double *lat = calloc(n, sizeof(double)), t0 = 0, c0 = 0;

	for (char *h = strtok(hosts, ","); h; h = strtok(NULL, ",")) {
		if (nd == MAX_HOSTS) {
			fprintf(stderr, "more than %d hosts\n", MAX_HOSTS);
			return 2;
		}
		memset(&dst[nd], 0, sizeof(dst[nd]));
		dst[nd].sin_family = AF_INET;
		dst[nd].sin_port = htons(port);
		if (inet_pton(AF_INET, h, &dst[nd].sin_addr) != 1) {
			fprintf(stderr, "not an IPv4 address: %s\n", h);
			return 2;
		}
		nd++;
	}
	if (!nd || !lat || n < 1 || inet_pton(AF_INET, src_ip, &src.sin_addr) != 1) {
		fprintf(stderr, "bad arguments\n");
		return 2;
	}
	memset(msg, 1, sizeof(msg));
	alarm(300);
	for (int k = 0; k < warm + n; k++) {
		const struct sockaddr_in *d = &dst[k % nd];
		char buf[MSG * 2 + 1];
		int fd, got = 0, r, i;
		double start;

		if (k == warm) {
			t0 = now_us();
			c0 = cpu_us();
		}
		start = now_us();
		fd = socket(AF_INET, SOCK_STREAM, 0);
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		src.sin_port = htons(base + k);
		if (bind(fd, (struct sockaddr *)&src, sizeof(src)))
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
			continue;
		lat[k - warm] = now_us() - start;
		for (r = MSG; r > 0 && buf[r - 1] == ' '; r--)
			;
		buf[r] = 0;
		for (i = 0; i < nn && strcmp(names[i], buf); i++)
			;
		if (i == nn) {
			if (nn == MAX_HOSTS)
				return fail(k, d, "too many distinct backends");
			strcpy(names[nn++], buf);
		}
		counts[i]++;
	}
	double secs = (now_us() - t0) / 1e6, cpu = (cpu_us() - c0) / n;
	qsort(lat, n, sizeof(double), cmp);
	printf("{\"cps\":%.1f,\"p50\":%.1f,\"p99\":%.1f,\"cpuUs\":%.2f,\"backends\":{", n / secs, lat[n / 2],
	       lat[(int)(n * 0.99) < n ? (int)(n * 0.99) : n - 1], cpu);
	for (int i = 0; i < nn; i++)
		printf("%s\"%s\":%d", i ? "," : "", names[i], counts[i]);
	printf("}}\n");
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "serve"))
		return serve(atoi(argv[2]));
	if (argc == 8 && !strcmp(argv[1], "connect"))
		return connect_loop(argv[2], atoi(argv[3]), atoi(argv[4]), atoi(argv[5]), argv[6], atoi(argv[7]));
	fprintf(stderr, "usage: crr serve PORT | crr connect HOSTS PORT N WARMUP SRC BASEPORT\n");
	return 2;
}
