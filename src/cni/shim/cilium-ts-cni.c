/*
 * cilium-ts CNI plugin entry: a small compiled program the runtime executes per pod (a node process
 * alone takes ~30 ms to start). It forwards the invocation as it is (the CNI_* environment and the
 * network configuration on stdin) to the agent's unix socket (POST /v1/cni/exec), where the plugin's
 * logic runs (validation, ADD/DEL/CHECK/STATUS/GC, result conversion, error objects), and prints the
 * agent's answer with its exit code.
 *
 * VERSION is answered here (runtimes ask it before every ADD and DEL; the list is SUPPORTED_VERSIONS
 * of types.ts, a test compares both entries' answers). What the agent cannot answer goes to the full
 * node plugin (plugin.js next to the real path of this program), given the same stdin: an agent that
 * cannot be reached (the node plugin owns those semantics: DEL idempotence, STATUS 50, error 100) and
 * an agent without /v1/cni/exec. A timeout or a broken answer is reported here as a CNI error object
 * (102, 101).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#ifndef CILIUM_TS_NODE
#define CILIUM_TS_NODE "node"
#endif

#define DEFAULT_SOCKET "/run/cilium-ts/default/node/agent.sock"
#define DEFAULT_TIMEOUT_MS 120000

extern char **environ;

struct buf {
  char *p;
  size_t len, cap;
};

static void put(struct buf *b, const char *s, size_t n) {
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (b->len + n + 1 > cap) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
      perror("cilium-ts-cni: out of memory");
      exit(1);
    }
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = 0;
}

static void puts_(struct buf *b, const char *s) { put(b, s, strlen(s)); }

/* A JSON string literal of s[0..n). */
static void put_json(struct buf *b, const char *s, size_t n) {
  put(b, "\"", 1);
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\') {
      char e[2] = {'\\', (char)c};
      put(b, e, 2);
    } else if (c < 0x20) {
      char e[8];
      snprintf(e, sizeof e, "\\u%04x", c);
      put(b, e, 6);
    } else {
      put(b, (const char *)&s[i], 1);
    }
  }
  put(b, "\"", 1);
}

/*
 * The value of a top-level-looking "key": "string" in the configuration, or NULL. A plain scan, not
 * a JSON parser: it only picks the socket path and the version for error objects; the agent parses
 * and validates the configuration itself.
 */
static char *json_string_field(const char *json, const char *key) {
  char pat[64];
  snprintf(pat, sizeof pat, "\"%s\"", key);
  const char *p = strstr(json, pat);
  if (!p) return NULL;
  p += strlen(pat);
  while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
  if (*p++ != ':') return NULL;
  while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
  if (*p++ != '"') return NULL;
  const char *end = p;
  while (*end && *end != '"' && *end != '\\') end++;
  if (*end != '"') return NULL;
  return strndup(p, (size_t)(end - p));
}

static const char *error_version(const char *conf) {
  static const char *known[] = {"0.3.0", "0.3.1", "0.4.0", "1.0.0"};
  char *v = json_string_field(conf, "cniVersion");
  if (v)
    for (size_t i = 0; i < sizeof known / sizeof *known; i++)
      if (strcmp(v, known[i]) == 0) return known[i];
  return "1.0.0";
}

/* Print a CNI error object and exit 1. */
static void fail(const char *conf, int code, const char *msg, const char *details) {
  struct buf b = {0};
  puts_(&b, "{\"cniVersion\":\"");
  puts_(&b, error_version(conf));
  char num[32];
  snprintf(num, sizeof num, "\",\"code\":%d,\"msg\":", code);
  puts_(&b, num);
  put_json(&b, msg, strlen(msg));
  if (details) {
    puts_(&b, ",\"details\":");
    put_json(&b, details, strlen(details));
  }
  puts_(&b, "}\n");
  fwrite(b.p, 1, b.len, stdout);
  exit(1);
}

/* Hand the invocation to the node plugin next to our real path, with the stdin we already read. */
static void run_node_plugin(const char *conf, size_t conf_len) {
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) fail(conf, 5, "cannot find the node plugin", "readlink /proc/self/exe failed");
  self[n] = 0;
  char *slash = strrchr(self, '/');
  if (!slash || (size_t)(slash - self) + sizeof "/plugin.js" > sizeof self)
    fail(conf, 5, "cannot find the node plugin", self);
  strcpy(slash, "/plugin.js");
  int fd = memfd_create("cni-stdin", 0);
  if (fd < 0) fail(conf, 5, "cannot pass stdin to the node plugin", strerror(errno));
  for (size_t off = 0; off < conf_len;) {
    ssize_t w = write(fd, conf + off, conf_len - off);
    if (w <= 0) fail(conf, 5, "cannot pass stdin to the node plugin", strerror(errno));
    off += (size_t)w;
  }
  lseek(fd, 0, SEEK_SET);
  dup2(fd, 0);
  close(fd);
  char *argv[] = {(char *)CILIUM_TS_NODE, self, NULL};
  execv(CILIUM_TS_NODE, argv);
  argv[0] = (char *)"node";
  execvp("node", argv);
  fail(conf, 5, "cannot run the node plugin", strerror(errno));
}

static long now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000L + t.tv_nsec / 1000000L;
}

int main(void) {
  struct buf conf = {0};
  put(&conf, "", 0);
  char chunk[65536];
  for (;;) {
    ssize_t n = read(0, chunk, sizeof chunk);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      fail("", 5, "failed to read stdin", strerror(errno));
    }
    put(&conf, chunk, (size_t)n);
  }
  const char *cmd = getenv("CNI_COMMAND");
  if (cmd && strcmp(cmd, "VERSION") == 0) {
    fputs("{\"cniVersion\":\"1.0.0\",\"supportedVersions\":[\"0.3.0\",\"0.3.1\",\"0.4.0\",\"1.0.0\"]}\n", stdout);
    return 0;
  }

  const char *sock = getenv("CILIUM_TS_AGENT_SOCKET");
  char *from_conf = NULL;
  if (!sock || !*sock) sock = from_conf = json_string_field(conf.p, "agentSocket");
  if (!sock || !*sock) sock = DEFAULT_SOCKET;
  const char *t = getenv("CILIUM_TS_CNI_TIMEOUT_MS");
  long timeout_ms = t && atol(t) > 0 ? atol(t) : DEFAULT_TIMEOUT_MS;

  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  if (strlen(sock) >= sizeof addr.sun_path) fail(conf.p, 7, "invalid network configuration", "agentSocket is too long");
  strcpy(addr.sun_path, sock);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) run_node_plugin(conf.p, conf.len);

  /* Body: {"env":{CNI_* variables},"stdin":"<configuration>"} */
  struct buf body = {0};
  puts_(&body, "{\"env\":{");
  int first = 1;
  for (char **e = environ; *e; e++) {
    if (strncmp(*e, "CNI_", 4) != 0) continue;
    const char *eq = strchr(*e, '=');
    if (!eq) continue;
    if (!first) put(&body, ",", 1);
    first = 0;
    put_json(&body, *e, (size_t)(eq - *e));
    put(&body, ":", 1);
    put_json(&body, eq + 1, strlen(eq + 1));
  }
  puts_(&body, "},\"stdin\":");
  put_json(&body, conf.p, conf.len);
  puts_(&body, "}");
  struct buf req = {0};
  char head[256];
  snprintf(head, sizeof head,
           "POST /v1/cni/exec HTTP/1.1\r\nHost: agent\r\nContent-Type: application/json\r\n"
           "Content-Length: %zu\r\nConnection: close\r\n\r\n",
           body.len);
  puts_(&req, head);
  put(&req, body.p, body.len);
  for (size_t off = 0; off < req.len;) {
    ssize_t w = send(fd, req.p + off, req.len - off, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) fail(conf.p, 101, "bad answer from cilium-ts agent", strerror(errno));
    off += (size_t)w;
  }

  /* Answer: HTTP status, "x-cni-exit" header, body = the plugin's stdout. Read until the agent closes. */
  struct buf res = {0};
  long deadline = now_ms() + timeout_ms;
  for (;;) {
    long left = deadline - now_ms();
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int r = left > 0 ? poll(&p, 1, (int)(left > INT_MAX ? INT_MAX : left)) : 0;
    if (r < 0 && errno == EINTR) continue;
    if (r == 0) {
      char d[PATH_MAX + 64];
      snprintf(d, sizeof d, "no answer from agent at %s within %ld ms", sock, timeout_ms);
      fail(conf.p, 102, "cilium-ts agent did not answer in time", d);
    }
    ssize_t n = read(fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail(conf.p, 101, "bad answer from cilium-ts agent", strerror(errno));
    if (n == 0) break;
    put(&res, chunk, (size_t)n);
  }
  close(fd);
  int status = 0;
  char *hdr_end = res.p ? strstr(res.p, "\r\n\r\n") : NULL;
  if (!hdr_end || sscanf(res.p, "HTTP/1.%*d %d", &status) != 1)
    fail(conf.p, 101, "bad answer from cilium-ts agent", "not an HTTP response");
  /* An agent from before /v1/cni/exec: the node plugin speaks its older protocol. */
  if (status == 404) run_node_plugin(conf.p, conf.len);
  *hdr_end = 0;
  char *exit_hdr = strcasestr(res.p, "\r\nx-cni-exit:");
  if (status != 200 || !exit_hdr) {
    char d[64];
    snprintf(d, sizeof d, "HTTP %d without x-cni-exit", status);
    fail(conf.p, 101, "bad answer from cilium-ts agent", d);
  }
  int code = atoi(exit_hdr + strlen("\r\nx-cni-exit:"));
  char *out = hdr_end + 4;
  fwrite(out, 1, res.len - (size_t)(out - res.p), stdout);
  free(from_conf);
  return code;
}
