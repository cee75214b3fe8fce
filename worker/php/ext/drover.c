/*
 * drover's PHP extension: the PHP SDK's per-request path in C.
 *
 * The PHP SDK (worker/php) runs without it; with it loaded, the SDK's
 * channel (Drover\Runtime\NativeChannel) and request decoding call these
 * functions instead of doing the same work in PHP. Nothing here changes
 * what goes over the wire: the frames are docs/protocol.md's, byte for
 * byte those the pure-PHP path writes (tests/Runtime/NativeTest.php holds
 * the two to each other and to ipc/testdata/vectors.json).
 *
 * Why C: a PHP worker's own cost per request is what PHP's VM spends on
 * bookkeeping around a few system calls (unpack() of each frame header,
 * string concatenation of each answer, a msgpack map decoded through
 * php-msgpack's generic unpacker). See worker/php/ext/README.md for what
 * it measured.
 *
 * Everything in this file runs in one process with one channel (a drover
 * worker is one process with one socket to its master): the channel's
 * state lives in the module's globals, owned by these functions.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "php.h"
#include "SAPI.h"
#include "ext/standard/info.h"
#include "ext/standard/php_string.h"
#include "zend_exceptions.h"
#include "zend_smart_str.h"
#include "ext/spl/spl_exceptions.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define PHP_DROVER_VERSION "1.0.0"
/* The API the PHP SDK checks (Drover\Native\API): raised whenever a function's contract changes. */
#define DROVER_API 1

#define HEADER_SIZE 16
/* The largest payload a worker accepts from the master (ipc.DefaultMaxPayload, Frame::MAX_PAYLOAD). */
#define MAX_PAYLOAD (64u << 20)
/* Bytes asked of each recv(), as the pure-PHP channel asks. */
#define READ_SIZE (256u << 10)
/*
 * The read buffer holds what one recv() brings, or one whole frame (up to
 * MAX_PAYLOAD) when a frame is larger; grown past KEEP_BUFFER for a large
 * frame, it is freed once empty. The write buffer holds the frames of one
 * flush and is freed after one of more than 1 MiB.
 */
#define KEEP_BUFFER (1u << 20)
#define FRAME_CANCEL 20
#define FLAG_END 0x01
#define FRAME_RESPONSE 18
/* How deep decode() follows nested maps and arrays before it leaves the payload to php-msgpack. */
#define MAX_DEPTH 32
/*
 * decode() keeps the map keys it has seen (a Request's $_SERVER names,
 * the same in every request), up to KEYS_MAX of KEY_MAX bytes at most,
 * so that each request's map shares them instead of allocating and
 * hashing its own.
 */
#define KEYS_MAX 1024
#define KEY_MAX 64

ZEND_BEGIN_MODULE_GLOBALS(drover)
	int fd;             /* the channel's socket; -1 before open() */
	char *in;           /* bytes read and not yet taken: [in_off, in_len) */
	size_t in_len, in_off, in_cap;
	size_t no_cancel_before; /* has_cancel(): whole frames before this offset are not Cancels */
	smart_str out;      /* frames written and not yet flushed */
	char err[160];      /* why the channel is gone, for error() */
	HashTable *keys;    /* decode(): map keys seen, each kept as one string with its hash (KEYS_MAX at most) */
	/* server_enter() and server_leave(), each holding a reference of its own: */
	zend_array *base;    /* the process's $_SERVER, as it was at the first server_enter() */
	zend_array *server;  /* the array that is $_SERVER between requests and during them */
	zend_array *entered; /* the request's keys server_enter() set; NULL outside a request */
	uint32_t added;      /* how many of them were new keys, appended as $_SERVER's last buckets */
ZEND_END_MODULE_GLOBALS(drover)

ZEND_DECLARE_MODULE_GLOBALS(drover)
#define DG(v) ZEND_MODULE_GLOBALS_ACCESSOR(drover, v)

static void keys_free(void)
{
	if (DG(keys)) {
		zend_hash_destroy(DG(keys));
		FREE_HASHTABLE(DG(keys));
		DG(keys) = NULL;
	}
}

static void channel_free(void)
{
	if (DG(in)) {
		efree(DG(in));
	}
	DG(in) = NULL;
	DG(in_len) = DG(in_off) = DG(in_cap) = DG(no_cancel_before) = 0;
	smart_str_free(&DG(out));
}

/* Throws Drover\Runtime\ProtocolError (the SDK's) or, if it cannot be loaded, RuntimeException. */
static void throw_protocol(const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	zend_string *name = zend_string_init("Drover\\Runtime\\ProtocolError", sizeof("Drover\\Runtime\\ProtocolError") - 1, 0);
	zend_class_entry *ce = zend_lookup_class(name);
	zend_string_release(name);
	zend_throw_exception(ce ? ce : spl_ce_RuntimeException, msg, 0);
}

static uint32_t be32(const unsigned char *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
static uint64_t be64(const unsigned char *p) { return (uint64_t)be32(p) << 32 | be32(p + 4); }
static void put32(unsigned char *p, uint32_t v) { p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = v; }
static void put64(unsigned char *p, uint64_t v) { put32(p, (uint32_t)(v >> 32)); put32(p + 4, (uint32_t)v); }

/* ---- open(int $fd): void ------------------------------------------------- */

ZEND_BEGIN_ARG_WITH_RETURN_TYPE_INFO_EX(arginfo_open, 0, 1, IS_VOID, 0)
	ZEND_ARG_TYPE_INFO(0, fd, IS_LONG, 0)
ZEND_END_ARG_INFO()

PHP_FUNCTION(open)
{
	zend_long fd;
	ZEND_PARSE_PARAMETERS_START(1, 1)
		Z_PARAM_LONG(fd)
	ZEND_PARSE_PARAMETERS_END();
	if (fd < 0 || fd > INT_MAX) {
		zend_argument_value_error(1, "must be an open file descriptor, " ZEND_LONG_FMT " given", fd);
		RETURN_THROWS();
	}
	channel_free();
	DG(fd) = (int)fd;
	DG(err)[0] = '\0';
}

/* ---- read(?float $timeout = null): array|null|false ----------------------- */

/*
 * Waits up to timeout_ms (negative: no limit) for the channel to be
 * readable. 1: readable; 0: not in time (or a signal came: the caller
 * looks at its timers and asks again, as socket_select's EINTR did).
 */
static int wait_readable(int timeout_ms)
{
	struct pollfd p = {.fd = DG(fd), .events = POLLIN};
	int n = poll(&p, 1, timeout_ms);
	if (n < 0) {
		if (errno == EINTR) {
			return 0;
		}
		zend_throw_exception_ex(spl_ce_RuntimeException, 0, "poll on the drover channel: %s", strerror(errno));
		return -1;
	}
	return n > 0;
}

/* Reads what the socket has into the buffer. 1: read; 0: the master is gone (err set); -1: thrown. */
static int fill(size_t want)
{
	if (DG(in_off) > 0) {
		memmove(DG(in), DG(in) + DG(in_off), DG(in_len) - DG(in_off));
		DG(in_len) -= DG(in_off);
		DG(no_cancel_before) = DG(no_cancel_before) > DG(in_off) ? DG(no_cancel_before) - DG(in_off) : 0;
		DG(in_off) = 0;
	}
	size_t need = DG(in_len) + (want > READ_SIZE ? want : READ_SIZE);
	if (need > DG(in_cap)) {
		DG(in) = erealloc(DG(in), need);
		DG(in_cap) = need;
	}
	while (1) {
		ssize_t n = recv(DG(fd), DG(in) + DG(in_len), DG(in_cap) - DG(in_len), 0);
		if (n > 0) {
			DG(in_len) += (size_t)n;
			return 1;
		}
		if (n == 0) {
			snprintf(DG(err), sizeof DG(err), "end of file on the channel");
			return 0;
		}
		if (errno == EINTR) {
			continue;
		}
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			if (wait_readable(-1) < 0) {
				return -1;
			}
			continue;
		}
		if (errno == ECONNRESET) {
			snprintf(DG(err), sizeof DG(err), "the channel was reset");
			return 0;
		}
		zend_throw_exception_ex(spl_ce_RuntimeException, 0, "read from the drover channel: %s", strerror(errno));
		return -1;
	}
}

ZEND_BEGIN_ARG_WITH_RETURN_TYPE_MASK_EX(arginfo_read, 0, 0, MAY_BE_ARRAY | MAY_BE_NULL | MAY_BE_FALSE)
	ZEND_ARG_TYPE_INFO_WITH_DEFAULT_VALUE(0, timeout, IS_DOUBLE, 1, "null")
ZEND_END_ARG_INFO()

/*
 * The next frame as [type, flags, id, payload]; null when a timeout (in
 * seconds) was given and none arrived in time; false when the master is
 * gone (error() says how). Throws ProtocolError on a malformed header.
 */
PHP_FUNCTION(read)
{
	double timeout = 0;
	bool timeout_null = 1;
	ZEND_PARSE_PARAMETERS_START(0, 1)
		Z_PARAM_OPTIONAL
		Z_PARAM_DOUBLE_OR_NULL(timeout, timeout_null)
	ZEND_PARSE_PARAMETERS_END();
	if (DG(fd) < 0) {
		zend_throw_error(NULL, "Drover\\Native\\read: the channel is not open (call Drover\\Native\\open first)");
		RETURN_THROWS();
	}
	while (1) {
		size_t avail = DG(in_len) - DG(in_off);
		size_t want = 0;
		if (avail >= HEADER_SIZE) {
			const unsigned char *h = (const unsigned char *)DG(in) + DG(in_off);
			uint32_t len = be32(h);
			if (h[4] == 0 || h[6] != 0 || h[7] != 0) {
				char hex[2 * HEADER_SIZE + 1];
				for (int i = 0; i < HEADER_SIZE; i++) {
					snprintf(hex + 2 * i, 3, "%02x", h[i]);
				}
				throw_protocol("malformed frame header %s", hex);
				RETURN_THROWS();
			}
			if (len > MAX_PAYLOAD) {
				throw_protocol("frame of %u bytes is over the %u-byte limit", len, MAX_PAYLOAD);
				RETURN_THROWS();
			}
			if (avail >= HEADER_SIZE + (size_t)len) {
				zval payload;
				if (len == 0) {
					ZVAL_EMPTY_STRING(&payload);
				} else if (len == 1) {
					ZVAL_CHAR(&payload, h[HEADER_SIZE]);
				} else {
					ZVAL_STRINGL_FAST(&payload, (const char *)h + HEADER_SIZE, len);
				}
				array_init_size(return_value, 4);
				zend_hash_real_init_packed(Z_ARRVAL_P(return_value));
				ZEND_HASH_FILL_PACKED(Z_ARRVAL_P(return_value)) {
					ZEND_HASH_FILL_SET_LONG(h[4]);
					ZEND_HASH_FILL_NEXT();
					ZEND_HASH_FILL_SET_LONG(h[5]);
					ZEND_HASH_FILL_NEXT();
					ZEND_HASH_FILL_SET_LONG((zend_long)be64(h + 8));
					ZEND_HASH_FILL_NEXT();
					ZEND_HASH_FILL_ADD(&payload);
				} ZEND_HASH_FILL_END();
				DG(in_off) += HEADER_SIZE + (size_t)len;
				if (DG(in_off) == DG(in_len)) {
					DG(in_off) = DG(in_len) = DG(no_cancel_before) = 0;
					if (DG(in_cap) > KEEP_BUFFER) {
						/* A large frame grew it: not kept for small ones. */
						efree(DG(in));
						DG(in) = NULL;
						DG(in_cap) = 0;
					}
				}
				return;
			}
			want = HEADER_SIZE + (size_t)len - avail;
		}
		if (!timeout_null) {
			double ms = timeout > 0 ? timeout * 1000.0 : 0;
			int r = wait_readable(ms > INT_MAX ? INT_MAX : (int)ms);
			if (r < 0) {
				RETURN_THROWS();
			}
			if (r == 0) {
				RETURN_NULL();
			}
		}
		int r = fill(want);
		if (r < 0) {
			RETURN_THROWS();
		}
		if (r == 0) {
			RETURN_FALSE;
		}
	}
}

/* ---- has_cancel(int $id): bool -------------------------------------------- */

ZEND_BEGIN_ARG_WITH_RETURN_TYPE_INFO_EX(arginfo_has_cancel, 0, 1, _IS_BOOL, 0)
	ZEND_ARG_TYPE_INFO(0, id, IS_LONG, 0)
ZEND_END_ARG_INFO()

/* Whether a Cancel with FlagEnd for $id is buffered (read, not yet taken), without taking it. */
PHP_FUNCTION(has_cancel)
{
	zend_long id;
	ZEND_PARSE_PARAMETERS_START(1, 1)
		Z_PARAM_LONG(id)
	ZEND_PARSE_PARAMETERS_END();
	bool clean = 1;
	size_t off = DG(in_off) > DG(no_cancel_before) ? DG(in_off) : DG(no_cancel_before);
	size_t end = DG(in_len);
	while (end - off >= HEADER_SIZE) {
		const unsigned char *h = (const unsigned char *)DG(in) + off;
		size_t next = off + HEADER_SIZE + be32(h);
		if (h[4] == FRAME_CANCEL) {
			if ((h[5] & FLAG_END) && be64(h + 8) == (uint64_t)id) {
				RETURN_TRUE;
			}
			clean = 0; /* another request's: kept for its own check */
		}
		if (clean && next <= end) {
			DG(no_cancel_before) = next;
		}
		off = next;
		if (off > end) {
			break;
		}
	}
	RETURN_FALSE;
}

/* ---- write(int $type, int $id, string $payload = '', int $flags = 0): void -- */

static void put_header(uint32_t len, zend_long type, zend_long flags, zend_long id)
{
	unsigned char h[HEADER_SIZE];
	put32(h, len);
	h[4] = (unsigned char)type;
	h[5] = (unsigned char)flags;
	h[6] = h[7] = 0;
	put64(h + 8, (uint64_t)id);
	smart_str_appendl(&DG(out), (const char *)h, HEADER_SIZE);
}

ZEND_BEGIN_ARG_WITH_RETURN_TYPE_INFO_EX(arginfo_write, 0, 2, IS_VOID, 0)
	ZEND_ARG_TYPE_INFO(0, type, IS_LONG, 0)
	ZEND_ARG_TYPE_INFO(0, id, IS_LONG, 0)
	ZEND_ARG_TYPE_INFO_WITH_DEFAULT_VALUE(0, payload, IS_STRING, 0, "\"\"")
	ZEND_ARG_TYPE_INFO_WITH_DEFAULT_VALUE(0, flags, IS_LONG, 0, "0")
ZEND_END_ARG_INFO()

/* Queues one frame; flush() writes everything queued. */
PHP_FUNCTION(write)
{
	zend_long type, id, flags = 0;
	zend_string *payload = NULL;
	ZEND_PARSE_PARAMETERS_START(2, 4)
		Z_PARAM_LONG(type)
		Z_PARAM_LONG(id)
		Z_PARAM_OPTIONAL
		Z_PARAM_STR(payload)
		Z_PARAM_LONG(flags)
	ZEND_PARSE_PARAMETERS_END();
	size_t n = payload ? ZSTR_LEN(payload) : 0;
	if (n > UINT32_MAX) {
		zend_argument_value_error(3, "is over a frame's 4 GiB");
		RETURN_THROWS();
	}
	put_header((uint32_t)n, type, flags, id);
	if (n) {
		smart_str_appendl(&DG(out), ZSTR_VAL(payload), n);
	}
}

/* ---- response(int $id, int $status, array $headers, string $body = ''): void */

static void mp_uint(smart_str *s, zend_long v)
{
	unsigned char b[9];
	if (v >= -32 && v <= 0x7f) {
		smart_str_appendc(s, (char)(v & 0xff));
	} else if (v >= 0) {
		if (v <= 0xff) {
			b[0] = 0xcc; b[1] = (unsigned char)v;
			smart_str_appendl(s, (const char *)b, 2);
		} else if (v <= 0xffff) {
			b[0] = 0xcd; b[1] = (unsigned char)(v >> 8); b[2] = (unsigned char)v;
			smart_str_appendl(s, (const char *)b, 3);
		} else if (v <= 0xffffffffLL) {
			b[0] = 0xce; put32(b + 1, (uint32_t)v);
			smart_str_appendl(s, (const char *)b, 5);
		} else {
			b[0] = 0xcf; put64(b + 1, (uint64_t)v);
			smart_str_appendl(s, (const char *)b, 9);
		}
	} else if (v >= -0x80) {
		b[0] = 0xd0; b[1] = (unsigned char)(v & 0xff);
		smart_str_appendl(s, (const char *)b, 2);
	} else if (v >= -0x8000) {
		b[0] = 0xd1; b[1] = (unsigned char)((v >> 8) & 0xff); b[2] = (unsigned char)(v & 0xff);
		smart_str_appendl(s, (const char *)b, 3);
	} else if (v >= -0x80000000LL) {
		b[0] = 0xd2; put32(b + 1, (uint32_t)(v & 0xffffffff));
		smart_str_appendl(s, (const char *)b, 5);
	} else {
		b[0] = 0xd3; put64(b + 1, (uint64_t)v);
		smart_str_appendl(s, (const char *)b, 9);
	}
}

/* A msgpack str head in its shortest form, as Go writes it. */
static void mp_str_head(smart_str *s, size_t n)
{
	unsigned char b[5];
	if (n <= 31) {
		smart_str_appendc(s, (char)(0xa0 | n));
	} else if (n <= 0xff) {
		b[0] = 0xd9; b[1] = (unsigned char)n;
		smart_str_appendl(s, (const char *)b, 2);
	} else if (n <= 0xffff) {
		b[0] = 0xda; b[1] = (unsigned char)(n >> 8); b[2] = (unsigned char)n;
		smart_str_appendl(s, (const char *)b, 3);
	} else {
		b[0] = 0xdb; put32(b + 1, (uint32_t)n);
		smart_str_appendl(s, (const char *)b, 5);
	}
}

/* A Response's body key and bin value; nothing for an empty body (the key is left out). */
static void put_body(smart_str *s, zend_string *body)
{
	size_t blen = ZSTR_LEN(body);
	unsigned char b[5];
	if (!blen) {
		return;
	}
	smart_str_appendl(s, "\xa4" "body", 5);
	if (blen <= 0xff) {
		b[0] = 0xc4; b[1] = (unsigned char)blen;
		smart_str_appendl(s, (const char *)b, 2);
	} else if (blen <= 0xffff) {
		b[0] = 0xc5; b[1] = (unsigned char)(blen >> 8); b[2] = (unsigned char)blen;
		smart_str_appendl(s, (const char *)b, 3);
	} else {
		b[0] = 0xc6; put32(b + 1, (uint32_t)blen);
		smart_str_appendl(s, (const char *)b, 5);
	}
	smart_str_appendl(s, ZSTR_VAL(body), blen);
}

ZEND_BEGIN_ARG_WITH_RETURN_TYPE_INFO_EX(arginfo_response, 0, 3, IS_VOID, 0)
	ZEND_ARG_TYPE_INFO(0, id, IS_LONG, 0)
	ZEND_ARG_TYPE_INFO(0, status, IS_LONG, 0)
	ZEND_ARG_TYPE_INFO(0, headers, IS_ARRAY, 0)
	ZEND_ARG_TYPE_INFO_WITH_DEFAULT_VALUE(0, body, IS_STRING, 0, "\"\"")
	ZEND_ARG_TYPE_INFO_WITH_DEFAULT_VALUE(0, flags, IS_LONG, 0, "1")
ZEND_END_ARG_INFO()

/*
 * Queues a Response frame for request $id: status, headers (a list of
 * name, value, … strings, as Response::wireHeaders gives) and body (left
 * out when empty), the bytes Codec::encodeResponse writes, with $flags
 * (FlagEnd by default: the whole answer).
 */
PHP_FUNCTION(response)
{
	zend_long id, status, flags = FLAG_END;
	HashTable *headers;
	zend_string *body = NULL;
	ZEND_PARSE_PARAMETERS_START(3, 5)
		Z_PARAM_LONG(id)
		Z_PARAM_LONG(status)
		Z_PARAM_ARRAY_HT(headers)
		Z_PARAM_OPTIONAL
		Z_PARAM_STR(body)
		Z_PARAM_LONG(flags)
	ZEND_PARSE_PARAMETERS_END();
	size_t blen = body ? ZSTR_LEN(body) : 0;
	uint32_t count = zend_hash_num_elements(headers);
	zval *v;
	/* Headers that are not strings are written as PHP's string of them: the master reads strings only. */
	ZEND_HASH_FOREACH_VAL(headers, v) {
		ZVAL_DEREF(v);
		if (Z_TYPE_P(v) != IS_STRING) {
			zend_string *tmp = zval_try_get_string(v);
			if (!tmp) {
				RETURN_THROWS();
			}
			zend_string_release(tmp);
		}
	} ZEND_HASH_FOREACH_END();

	smart_str *s = &DG(out);
	size_t start = s->s ? ZSTR_LEN(s->s) : 0;
	put_header(0, FRAME_RESPONSE, flags, id); /* the length is set below */
	smart_str_appendl(s, blen ? "\x83\xa6status" : "\x82\xa6status", 8);
	mp_uint(s, status);
	smart_str_appendl(s, "\xa7headers", 8);
	if (count <= 15) {
		smart_str_appendc(s, (char)(0x90 | count));
	} else if (count <= 0xffff) {
		unsigned char b[3] = {0xdc, (unsigned char)(count >> 8), (unsigned char)count};
		smart_str_appendl(s, (const char *)b, 3);
	} else {
		unsigned char b[5] = {0xdd};
		put32(b + 1, count);
		smart_str_appendl(s, (const char *)b, 5);
	}
	ZEND_HASH_FOREACH_VAL(headers, v) {
		ZVAL_DEREF(v);
		if (Z_TYPE_P(v) == IS_STRING) {
			mp_str_head(s, Z_STRLEN_P(v));
			smart_str_appendl(s, Z_STRVAL_P(v), Z_STRLEN_P(v));
		} else {
			zend_string *tmp = zval_get_string(v);
			mp_str_head(s, ZSTR_LEN(tmp));
			smart_str_appendl(s, ZSTR_VAL(tmp), ZSTR_LEN(tmp));
			zend_string_release(tmp);
		}
	} ZEND_HASH_FOREACH_END();
	if (body) {
		put_body(s, body);
	}
	size_t plen = ZSTR_LEN(s->s) - start - HEADER_SIZE;
	if (plen > UINT32_MAX) {
		ZSTR_LEN(s->s) = start;
		zend_argument_value_error(4, "makes a frame over 4 GiB");
		RETURN_THROWS();
	}
	put32((unsigned char *)ZSTR_VAL(s->s) + start, (uint32_t)plen);
}

/* ---- answer(int $id, int $status, array $headerMap, string $body): bool ---- */

/*
 * The header list of Response::wireHeaders, from the Response's own map
 * (lower-case name => [name as given, [value, …]]), into s: each value
 * with its name, and a text/ Content-Type without a charset given ini
 * default_charset's (as PHP's SAPIs do). False, with nothing written, for
 * a map of another shape: the caller then gives wireHeaders' list.
 */
static bool put_header_map(smart_str *s, HashTable *map)
{
	uint32_t count = 0;
	zend_string *key;
	zval *e;
	ZEND_HASH_FOREACH_STR_KEY_VAL(map, key, e) {
		if (!key || Z_TYPE_P(e) != IS_ARRAY || zend_hash_num_elements(Z_ARRVAL_P(e)) != 2) {
			return false;
		}
		zval *name = zend_hash_index_find(Z_ARRVAL_P(e), 0), *values = zend_hash_index_find(Z_ARRVAL_P(e), 1), *v;
		if (!name || Z_TYPE_P(name) != IS_STRING || !values || Z_TYPE_P(values) != IS_ARRAY) {
			return false;
		}
		ZEND_HASH_FOREACH_VAL(Z_ARRVAL_P(values), v) {
			if (Z_TYPE_P(v) != IS_STRING) {
				return false;
			}
			count++;
		} ZEND_HASH_FOREACH_END();
	} ZEND_HASH_FOREACH_END();
	count *= 2;
	if (count <= 15) {
		smart_str_appendc(s, (char)(0x90 | count));
	} else if (count <= 0xffff) {
		unsigned char b[3] = {0xdc, (unsigned char)(count >> 8), (unsigned char)count};
		smart_str_appendl(s, (const char *)b, 3);
	} else {
		unsigned char b[5] = {0xdd};
		put32(b + 1, count);
		smart_str_appendl(s, (const char *)b, 5);
	}
	ZEND_HASH_FOREACH_STR_KEY_VAL(map, key, e) {
		zval *name = zend_hash_index_find(Z_ARRVAL_P(e), 0), *values = zend_hash_index_find(Z_ARRVAL_P(e), 1), *v;
		bool first = true;
		ZEND_HASH_FOREACH_VAL(Z_ARRVAL_P(values), v) {
			mp_str_head(s, Z_STRLEN_P(name));
			smart_str_appendl(s, Z_STRVAL_P(name), Z_STRLEN_P(name));
			const char *cs = NULL;
			size_t cslen = 0;
			if (first && zend_string_equals_literal(key, "content-type") && Z_STRLEN_P(v) >= 5
				&& zend_binary_strncasecmp(Z_STRVAL_P(v), 5, "text/", 5, 5) == 0
				&& !php_memnistr(Z_STRVAL_P(v), "charset=", 8, Z_STRVAL_P(v) + Z_STRLEN_P(v))) {
				cs = zend_ini_string_ex("default_charset", sizeof("default_charset") - 1, 0, NULL);
				cslen = cs ? strlen(cs) : 0;
			}
			if (cslen) {
				mp_str_head(s, Z_STRLEN_P(v) + 9 + cslen);
				smart_str_appendl(s, Z_STRVAL_P(v), Z_STRLEN_P(v));
				smart_str_appendl(s, ";charset=", 9);
				smart_str_appendl(s, cs, cslen);
			} else {
				mp_str_head(s, Z_STRLEN_P(v));
				smart_str_appendl(s, Z_STRVAL_P(v), Z_STRLEN_P(v));
			}
			first = false;
		} ZEND_HASH_FOREACH_END();
	} ZEND_HASH_FOREACH_END();
	return true;
}

ZEND_BEGIN_ARG_WITH_RETURN_TYPE_INFO_EX(arginfo_answer, 0, 4, _IS_BOOL, 0)
	ZEND_ARG_TYPE_INFO(0, id, IS_LONG, 0)
	ZEND_ARG_TYPE_INFO(0, status, IS_LONG, 0)
	ZEND_ARG_TYPE_INFO(0, headerMap, IS_ARRAY, 0)
	ZEND_ARG_TYPE_INFO(0, body, IS_STRING, 0)
ZEND_END_ARG_INFO()

/*
 * Queues the whole answer to request $id (a Response frame with FlagEnd)
 * from a Response's header map (Response::headerMap), the bytes response()
 * writes given Response::wireHeaders(): without building that list in
 * PHP. False, with nothing queued, for a map of another shape.
 */
PHP_FUNCTION(answer)
{
	zend_long id, status;
	HashTable *map;
	zend_string *body;
	ZEND_PARSE_PARAMETERS_START(4, 4)
		Z_PARAM_LONG(id)
		Z_PARAM_LONG(status)
		Z_PARAM_ARRAY_HT(map)
		Z_PARAM_STR(body)
	ZEND_PARSE_PARAMETERS_END();
	size_t blen = ZSTR_LEN(body);
	smart_str *s = &DG(out);
	size_t start = s->s ? ZSTR_LEN(s->s) : 0;
	put_header(0, FRAME_RESPONSE, FLAG_END, id);
	smart_str_appendl(s, blen ? "\x83\xa6status" : "\x82\xa6status", 8);
	mp_uint(s, status);
	smart_str_appendl(s, "\xa7headers", 8);
	if (!put_header_map(s, map)) {
		ZSTR_LEN(s->s) = start;
		RETURN_FALSE;
	}
	put_body(s, body);
	size_t plen = ZSTR_LEN(s->s) - start - HEADER_SIZE;
	if (plen > UINT32_MAX) {
		ZSTR_LEN(s->s) = start;
		zend_argument_value_error(4, "makes a frame over 4 GiB");
		RETURN_THROWS();
	}
	put32((unsigned char *)ZSTR_VAL(s->s) + start, (uint32_t)plen);
	RETURN_TRUE;
}

/* ---- pending(): bool, flush(): bool, error(): string ------------------------ */

ZEND_BEGIN_ARG_WITH_RETURN_TYPE_INFO_EX(arginfo_pending, 0, 0, _IS_BOOL, 0)
ZEND_END_ARG_INFO()

PHP_FUNCTION(pending)
{
	ZEND_PARSE_PARAMETERS_NONE();
	RETURN_BOOL(DG(out).s && ZSTR_LEN(DG(out).s) > 0);
}

ZEND_BEGIN_ARG_WITH_RETURN_TYPE_INFO_EX(arginfo_flush, 0, 0, _IS_BOOL, 0)
ZEND_END_ARG_INFO()

/* Writes every queued frame, looping on short writes; false when the master is gone (error() says how). */
PHP_FUNCTION(flush)
{
	ZEND_PARSE_PARAMETERS_NONE();
	zend_string *out = DG(out).s;
	if (!out || ZSTR_LEN(out) == 0) {
		RETURN_TRUE;
	}
	size_t off = 0, len = ZSTR_LEN(out);
	while (off < len) {
		ssize_t n = send(DG(fd), ZSTR_VAL(out) + off, len - off, MSG_NOSIGNAL);
		if (n >= 0) {
			off += (size_t)n;
			continue;
		}
		if (errno == EINTR) {
			continue;
		}
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			struct pollfd p = {.fd = DG(fd), .events = POLLOUT};
			poll(&p, 1, -1);
			continue;
		}
		int e = errno;
		ZSTR_LEN(out) = 0;
		if (e == EPIPE || e == ECONNRESET) {
			snprintf(DG(err), sizeof DG(err), "the channel is closed (%s)", strerror(e));
			RETURN_FALSE;
		}
		zend_throw_exception_ex(spl_ce_RuntimeException, 0, "write to the drover channel: %s", strerror(e));
		RETURN_THROWS();
	}
	/* Kept for the next answer unless a large one grew it. */
	if (ZSTR_LEN(out) > (1u << 20)) {
		smart_str_free(&DG(out));
	} else {
		ZSTR_LEN(out) = 0;
	}
	RETURN_TRUE;
}

ZEND_BEGIN_ARG_WITH_RETURN_TYPE_INFO_EX(arginfo_error, 0, 0, IS_STRING, 0)
ZEND_END_ARG_INFO()

PHP_FUNCTION(error)
{
	ZEND_PARSE_PARAMETERS_NONE();
	RETURN_STRING(DG(err));
}

/* ---- decode(string $payload): ?array ----------------------------------------- */

typedef struct {
	const unsigned char *p, *end;
} reader;

static bool need(reader *r, size_t n) { return (size_t)(r->end - r->p) >= n; }

static bool read_value(reader *r, zval *out, int depth);

/* A str, bin or (as a key) int; false for anything this decoder leaves to php-msgpack. */
static bool read_str_len(reader *r, unsigned char c, size_t *len)
{
	if ((c & 0xe0) == 0xa0) {
		*len = c & 0x1f;
		return true;
	}
	switch (c) {
	case 0xd9: case 0xc4:
		if (!need(r, 1)) return false;
		*len = r->p[0]; r->p += 1;
		return true;
	case 0xda: case 0xc5:
		if (!need(r, 2)) return false;
		*len = (size_t)r->p[0] << 8 | r->p[1]; r->p += 2;
		return true;
	case 0xdb: case 0xc6:
		if (!need(r, 4)) return false;
		*len = be32(r->p); r->p += 4;
		return true;
	}
	return false;
}

static bool read_string(reader *r, unsigned char c, zval *out)
{
	size_t len;
	if (!read_str_len(r, c, &len) || !need(r, len)) {
		return false;
	}
	if (len == 0) {
		ZVAL_EMPTY_STRING(out);
	} else if (len == 1) {
		ZVAL_CHAR(out, r->p[0]);
	} else {
		ZVAL_STRINGL_FAST(out, (const char *)r->p, len);
	}
	r->p += len;
	return true;
}

static bool read_count(reader *r, unsigned char c, unsigned char fix, unsigned char c16, uint32_t *n)
{
	if ((c & 0xf0) == fix) {
		*n = c & 0x0f;
		return true;
	}
	if (c == c16) {
		if (!need(r, 2)) return false;
		*n = (uint32_t)r->p[0] << 8 | r->p[1]; r->p += 2;
		return true;
	}
	if (c == c16 + 1) {
		if (!need(r, 4)) return false;
		*n = be32(r->p); r->p += 4;
		return true;
	}
	return false;
}

static bool read_map(reader *r, uint32_t n, zval *out, int depth)
{
	/* Every entry takes two bytes at least: a count the payload cannot hold is not trusted with memory. */
	if ((size_t)(r->end - r->p) / 2 < n) {
		return false;
	}
	if (n == 0) {
		return false; /* php-msgpack makes an empty map a stdClass: its rules */
	}
	array_init_size(out, n);
	for (uint32_t i = 0; i < n; i++) {
		if (!need(r, 1)) goto fail;
		unsigned char c = *r->p++;
		zval val;
		if ((c & 0xe0) == 0xa0 || c == 0xd9 || c == 0xda || c == 0xdb) {
			size_t len;
			if (!read_str_len(r, c, &len) || !need(r, len)) goto fail;
			const char *key = (const char *)r->p;
			r->p += len;
			if (!read_value(r, &val, depth + 1)) goto fail;
			/* As php-msgpack: a numeric string key is an int key. */
			zend_ulong idx;
			if (ZEND_HANDLE_NUMERIC_STR(key, len, idx)) {
				zend_hash_index_update(Z_ARRVAL_P(out), idx, &val);
			} else if (len <= KEY_MAX) {
				zend_string *k = DG(keys) ? zend_hash_str_find_ptr(DG(keys), key, len) : NULL;
				if (!k) {
					if (!DG(keys)) {
						ALLOC_HASHTABLE(DG(keys));
						zend_hash_init(DG(keys), 64, NULL, NULL, 0);
					}
					k = zend_string_init(key, len, 0);
					zend_string_hash_val(k);
					if (zend_hash_num_elements(DG(keys)) < KEYS_MAX) {
						zend_hash_add_new_ptr(DG(keys), k, k); /* the table's key holds it */
						zend_string_release(k);
					} else {
						zend_hash_update(Z_ARRVAL_P(out), k, &val);
						zend_string_release(k);
						continue;
					}
				}
				zend_hash_update(Z_ARRVAL_P(out), k, &val);
			} else {
				zend_hash_str_update(Z_ARRVAL_P(out), key, len, &val);
			}
		} else if (c <= 0x7f || c >= 0xe0 || (c >= 0xcc && c <= 0xcf) || (c >= 0xd0 && c <= 0xd3)) {
			zval key;
			r->p--;
			if (!read_value(r, &key, depth + 1) || Z_TYPE(key) != IS_LONG) goto fail;
			if (!read_value(r, &val, depth + 1)) goto fail;
			zend_hash_index_update(Z_ARRVAL_P(out), Z_LVAL(key), &val);
		} else {
			goto fail; /* other key types: php-msgpack's rules */
		}
	}
	return true;
fail:
	zval_ptr_dtor(out);
	return false;
}

static bool read_array(reader *r, uint32_t n, zval *out, int depth)
{
	if ((size_t)(r->end - r->p) < n) {
		return false;
	}
	array_init_size(out, n);
	zend_hash_real_init_packed(Z_ARRVAL_P(out));
	for (uint32_t i = 0; i < n; i++) {
		zval val;
		if (!read_value(r, &val, depth + 1)) {
			zval_ptr_dtor(out);
			return false;
		}
		zend_hash_next_index_insert_new(Z_ARRVAL_P(out), &val);
	}
	return true;
}

static bool read_value(reader *r, zval *out, int depth)
{
	if (depth > MAX_DEPTH || !need(r, 1)) {
		return false;
	}
	unsigned char c = *r->p++;
	if (c <= 0x7f) { ZVAL_LONG(out, c); return true; }
	if (c >= 0xe0) { ZVAL_LONG(out, (signed char)c); return true; }
	if ((c & 0xe0) == 0xa0) return read_string(r, c, out);
	uint32_t n;
	if ((c & 0xf0) == 0x80 || c == 0xde || c == 0xdf) {
		return read_count(r, c, 0x80, 0xde, &n) && read_map(r, n, out, depth);
	}
	if ((c & 0xf0) == 0x90 || c == 0xdc || c == 0xdd) {
		return read_count(r, c, 0x90, 0xdc, &n) && read_array(r, n, out, depth);
	}
	switch (c) {
	case 0xc0: ZVAL_NULL(out); return true;
	case 0xc2: ZVAL_FALSE(out); return true;
	case 0xc3: ZVAL_TRUE(out); return true;
	case 0xc4: case 0xc5: case 0xc6:
	case 0xd9: case 0xda: case 0xdb:
		return read_string(r, c, out);
	case 0xcc: if (!need(r, 1)) return false; ZVAL_LONG(out, r->p[0]); r->p += 1; return true;
	case 0xcd: if (!need(r, 2)) return false; ZVAL_LONG(out, (zend_long)r->p[0] << 8 | r->p[1]); r->p += 2; return true;
	case 0xce: if (!need(r, 4)) return false; ZVAL_LONG(out, (zend_long)be32(r->p)); r->p += 4; return true;
	case 0xcf: {
		if (!need(r, 8)) return false;
		uint64_t u = be64(r->p);
		if (u > ZEND_LONG_MAX) return false; /* php-msgpack's rules for it */
		ZVAL_LONG(out, (zend_long)u); r->p += 8; return true;
	}
	case 0xd0: if (!need(r, 1)) return false; ZVAL_LONG(out, (int8_t)r->p[0]); r->p += 1; return true;
	case 0xd1: if (!need(r, 2)) return false; ZVAL_LONG(out, (int16_t)((uint16_t)r->p[0] << 8 | r->p[1])); r->p += 2; return true;
	case 0xd2: if (!need(r, 4)) return false; ZVAL_LONG(out, (int32_t)be32(r->p)); r->p += 4; return true;
	case 0xd3: if (!need(r, 8)) return false; ZVAL_LONG(out, (zend_long)(int64_t)be64(r->p)); r->p += 8; return true;
	case 0xca: {
		if (!need(r, 4)) return false;
		uint32_t u = be32(r->p); float f; memcpy(&f, &u, 4);
		ZVAL_DOUBLE(out, f); r->p += 4; return true;
	}
	case 0xcb: {
		if (!need(r, 8)) return false;
		uint64_t u = be64(r->p); double d; memcpy(&d, &u, 8);
		ZVAL_DOUBLE(out, d); r->p += 8; return true;
	}
	}
	return false; /* ext types and the reserved byte: php-msgpack's rules */
}

ZEND_BEGIN_ARG_WITH_RETURN_TYPE_INFO_EX(arginfo_decode, 0, 1, IS_ARRAY, 1)
	ZEND_ARG_TYPE_INFO(0, payload, IS_STRING, 0)
ZEND_END_ARG_INFO()

/*
 * A msgpack map (a Request frame's payload) as the array msgpack_unpack
 * gives for it, or null for anything else: another type, trailing bytes,
 * an ext type, a key that is not a str or int, an empty map (php-msgpack
 * makes it a stdClass), a uint64 over
 * PHP_INT_MAX, nesting over 32 levels, a truncated payload. The SDK hands
 * a null's payload to msgpack_unpack, whose rules then apply, so that the
 * two give the same result for every input.
 */
PHP_FUNCTION(decode)
{
	zend_string *payload;
	ZEND_PARSE_PARAMETERS_START(1, 1)
		Z_PARAM_STR(payload)
	ZEND_PARSE_PARAMETERS_END();
	reader r = {(const unsigned char *)ZSTR_VAL(payload), (const unsigned char *)ZSTR_VAL(payload) + ZSTR_LEN(payload)};
	uint32_t n;
	if (!need(&r, 1)) {
		RETURN_NULL();
	}
	unsigned char c = *r.p++;
	if (!(((c & 0xf0) == 0x80 || c == 0xde || c == 0xdf) && read_count(&r, c, 0x80, 0xde, &n))) {
		RETURN_NULL();
	}
	if (!read_map(&r, n, return_value, 0)) {
		RETURN_NULL();
	}
	if (r.p != r.end) {
		zval_ptr_dtor(return_value);
		RETURN_NULL();
	}
}

/* ---- server_enter(array $request): bool, server_leave(): void ----------------- */

/*
 * $_SERVER for each request is the process's $_SERVER with the request's
 * keys set (array_replace($base, $request)), and the process's again
 * after it. Built anew for every request, that is a copy of every
 * environment variable and its release: the largest single cost of a
 * small request in the pure-PHP SDK. Here one array stays $_SERVER from
 * one request to the next: server_enter() sets the request's keys in it
 * and server_leave() puts back what they replaced, in place, as long as
 * nothing but $_SERVER and this extension holds it (refcount 2). Code
 * that keeps a copy of $_SERVER ($keep = $_SERVER, Symfony's ServerBag)
 * or writes to it separates it (copy on write) from the array kept here:
 * then server_leave() leaves that copy to its holder and makes $_SERVER a
 * fresh copy of the process's, as the pure-PHP SDK does every time.
 */

static zval *server_zval(void)
{
	zend_string *name = ZSTR_KNOWN(ZEND_STR_AUTOGLOBAL_SERVER);
	zend_is_auto_global(name); /* armed (auto_globals_jit) */
	zval *sv = zend_hash_find(&EG(symbol_table), name);
	if (sv && Z_TYPE_P(sv) == IS_INDIRECT) {
		sv = Z_INDIRECT_P(sv);
	}
	if (sv) {
		ZVAL_DEREF(sv);
	}
	return sv && Z_TYPE_P(sv) == IS_ARRAY ? sv : NULL;
}

/* Makes $_SERVER (sv) a fresh copy of the base, kept here. */
static void server_fresh(zval *sv)
{
	if (DG(server)) {
		zend_array_release(DG(server));
	}
	DG(server) = zend_array_dup(DG(base));
	GC_ADDREF(DG(server)); /* $_SERVER's reference; the other is ours */
	zval old;
	ZVAL_COPY_VALUE(&old, sv);
	ZVAL_ARR(sv, DG(server));
	zval_ptr_dtor(&old);
}

static void server_put(HashTable *ht, zend_string *key, zend_ulong idx, zval *val)
{
	Z_TRY_ADDREF_P(val);
	if (key) {
		zend_hash_update(ht, key, val);
	} else {
		zend_hash_index_update(ht, idx, val);
	}
}

static void server_leave_now(void)
{
	zend_array *req = DG(entered);
	DG(entered) = NULL;
	zval *sv = server_zval();
	if (sv && Z_ARR_P(sv) == DG(server) && GC_REFCOUNT(DG(server)) == 2) {
		HashTable *ht = DG(server);
		/* The new keys are the last buckets (nothing else wrote to the
		 * array since): deleted from the end, without a look-up, which
		 * leaves no hole behind. */
		for (uint32_t n = DG(added); n > 0 && ht->nNumUsed > 0; n--) {
			zend_hash_del_bucket(ht, ht->arData + ht->nNumUsed - 1);
		}
		if (zend_hash_num_elements(req) != DG(added)) {
			/* Keys the process's $_SERVER has too: its values back. */
			zend_string *key;
			zend_ulong idx;
			ZEND_HASH_FOREACH_KEY(req, idx, key) {
				zval *was = key ? zend_hash_find(DG(base), key) : zend_hash_index_find(DG(base), idx);
				if (was) {
					server_put(ht, key, idx, was);
				}
			} ZEND_HASH_FOREACH_END();
		}
	} else if (sv) {
		server_fresh(sv);
	}
	zend_array_release(req);
}

ZEND_BEGIN_ARG_WITH_RETURN_TYPE_INFO_EX(arginfo_server_enter, 0, 1, _IS_BOOL, 0)
	ZEND_ARG_TYPE_INFO(0, request, IS_ARRAY, 0)
ZEND_END_ARG_INFO()

/*
 * Makes $_SERVER the process's $_SERVER with $request's keys set, in the
 * order array_replace gives. False when $_SERVER is not an array (the
 * caller then does it in PHP).
 */
PHP_FUNCTION(server_enter)
{
	HashTable *req;
	ZEND_PARSE_PARAMETERS_START(1, 1)
		Z_PARAM_ARRAY_HT(req)
	ZEND_PARSE_PARAMETERS_END();
	if (DG(entered)) {
		server_leave_now(); /* the last request did not leave (its handler's reset failed) */
	}
	zval *sv = server_zval();
	if (!sv) {
		RETURN_FALSE;
	}
	if (!DG(base)) {
		DG(base) = Z_ARR_P(sv);
		GC_TRY_ADDREF(DG(base));
		if (GC_FLAGS(DG(base)) & IS_ARRAY_IMMUTABLE) {
			DG(base) = zend_array_dup(DG(base));
		}
	}
	if (Z_ARR_P(sv) != DG(server) || GC_REFCOUNT(DG(server)) != 2) {
		server_fresh(sv);
	}
	zend_string *key;
	zend_ulong idx;
	zval *val;
	HashTable *ht = DG(server);
	if (HT_IS_PACKED(ht)) {
		zend_hash_packed_to_hash(ht);
	}
	DG(added) = 0;
	ZEND_HASH_FOREACH_KEY_VAL(req, idx, key, val) {
		uint32_t before = zend_hash_num_elements(ht);
		server_put(ht, key, idx, val);
		DG(added) += zend_hash_num_elements(ht) != before;
	} ZEND_HASH_FOREACH_END();
	DG(entered) = req;
	GC_TRY_ADDREF(req);
	if (GC_FLAGS(req) & IS_ARRAY_IMMUTABLE) {
		DG(entered) = zend_array_dup(req);
	}
	RETURN_TRUE;
}

ZEND_BEGIN_ARG_WITH_RETURN_TYPE_INFO_EX(arginfo_server_leave, 0, 0, IS_VOID, 0)
ZEND_END_ARG_INFO()

/* Makes $_SERVER the process's $_SERVER again, after server_enter(). */
PHP_FUNCTION(server_leave)
{
	ZEND_PARSE_PARAMETERS_NONE();
	if (DG(entered)) {
		server_leave_now();
	}
}

/* ---- reset(bool $globals): bool ------------------------------------------------ */

/* Sets the global $name to an empty array (through a reference, if it is one). */
static void empty_global(const char *name, size_t len)
{
	zval *zv = zend_hash_str_find(&EG(symbol_table), name, len);
	if (zv && Z_TYPE_P(zv) == IS_INDIRECT) {
		zv = Z_INDIRECT_P(zv);
	}
	if (!zv || Z_TYPE_P(zv) == IS_UNDEF) {
		zval empty;
		ZVAL_EMPTY_ARRAY(&empty);
		if (zv) {
			ZVAL_COPY_VALUE(zv, &empty);
		} else {
			zend_hash_str_update(&EG(symbol_table), name, len, &empty);
		}
		return;
	}
	ZVAL_DEREF(zv);
	if (Z_TYPE_P(zv) == IS_ARRAY && zend_hash_num_elements(Z_ARRVAL_P(zv)) == 0) {
		return;
	}
	zval old;
	ZVAL_COPY_VALUE(&old, zv);
	ZVAL_EMPTY_ARRAY(zv);
	zval_ptr_dtor(&old);
}

ZEND_BEGIN_ARG_WITH_RETURN_TYPE_INFO_EX(arginfo_reset, 0, 1, _IS_BOOL, 0)
	ZEND_ARG_TYPE_INFO(0, globals, _IS_BOOL, 0)
ZEND_END_ARG_INFO()

/*
 * What a request leaves that must not reach the next one, after its
 * session was closed: with $globals, $_GET, $_POST, $_COOKIE, $_FILES and
 * $_REQUEST emptied and $_SERVER the process's again (server_leave());
 * $_SESSION unset. True when header() or http_response_code() were used
 * and the headers are not sent: the caller then resets them with
 * header_remove() and http_response_code(200), as without the extension.
 */
PHP_FUNCTION(reset)
{
	bool globals;
	ZEND_PARSE_PARAMETERS_START(1, 1)
		Z_PARAM_BOOL(globals)
	ZEND_PARSE_PARAMETERS_END();
	if (globals) {
		empty_global("_GET", sizeof("_GET") - 1);
		empty_global("_POST", sizeof("_POST") - 1);
		empty_global("_COOKIE", sizeof("_COOKIE") - 1);
		empty_global("_FILES", sizeof("_FILES") - 1);
		empty_global("_REQUEST", sizeof("_REQUEST") - 1);
		if (DG(entered)) {
			server_leave_now();
		}
	}
	zend_hash_str_del_ind(&EG(symbol_table), "_SESSION", sizeof("_SESSION") - 1);
	RETURN_BOOL(!SG(headers_sent) && (zend_llist_count(&SG(sapi_headers).headers) > 0
		|| SG(sapi_headers).http_response_code != 200 || SG(sapi_headers).http_status_line));
}

/* ---- the module ----------------------------------------------------------------- */

static const zend_function_entry drover_functions[] = {
	ZEND_NS_FE("Drover\\Native", open, arginfo_open)
	ZEND_NS_FE("Drover\\Native", read, arginfo_read)
	ZEND_NS_FE("Drover\\Native", has_cancel, arginfo_has_cancel)
	ZEND_NS_FE("Drover\\Native", write, arginfo_write)
	ZEND_NS_FE("Drover\\Native", response, arginfo_response)
	ZEND_NS_FE("Drover\\Native", answer, arginfo_answer)
	ZEND_NS_FE("Drover\\Native", pending, arginfo_pending)
	ZEND_NS_FE("Drover\\Native", flush, arginfo_flush)
	ZEND_NS_FE("Drover\\Native", error, arginfo_error)
	ZEND_NS_FE("Drover\\Native", decode, arginfo_decode)
	ZEND_NS_FE("Drover\\Native", server_enter, arginfo_server_enter)
	ZEND_NS_FE("Drover\\Native", server_leave, arginfo_server_leave)
	ZEND_NS_FE("Drover\\Native", reset, arginfo_reset)
	PHP_FE_END
};

static PHP_GINIT_FUNCTION(drover)
{
#if defined(COMPILE_DL_DROVER) && defined(ZTS)
	ZEND_TSRMLS_CACHE_UPDATE();
#endif
	memset(drover_globals, 0, sizeof(*drover_globals));
	drover_globals->fd = -1;
}

static PHP_MINIT_FUNCTION(drover)
{
	REGISTER_NS_LONG_CONSTANT("Drover\\Native", "API", DROVER_API, CONST_CS | CONST_PERSISTENT);
	REGISTER_NS_STRING_CONSTANT("Drover\\Native", "VERSION", PHP_DROVER_VERSION, CONST_CS | CONST_PERSISTENT);
	return SUCCESS;
}

static PHP_RSHUTDOWN_FUNCTION(drover)
{
	channel_free();
	keys_free();
	if (DG(entered)) {
		zend_array_release(DG(entered));
	}
	if (DG(server)) {
		zend_array_release(DG(server));
	}
	if (DG(base)) {
		zend_array_release(DG(base));
	}
	DG(entered) = DG(server) = DG(base) = NULL;
	DG(fd) = -1;
	return SUCCESS;
}

static PHP_MINFO_FUNCTION(drover)
{
	php_info_print_table_start();
	php_info_print_table_row(2, "drover support", "enabled");
	php_info_print_table_row(2, "version", PHP_DROVER_VERSION);
	php_info_print_table_end();
}

zend_module_entry drover_module_entry = {
	STANDARD_MODULE_HEADER,
	"drover",
	drover_functions,
	PHP_MINIT(drover),
	NULL,
	NULL,
	PHP_RSHUTDOWN(drover),
	PHP_MINFO(drover),
	PHP_DROVER_VERSION,
	PHP_MODULE_GLOBALS(drover),
	PHP_GINIT(drover),
	NULL,
	NULL,
	STANDARD_MODULE_PROPERTIES_EX
};

#ifdef COMPILE_DL_DROVER
#ifdef ZTS
ZEND_TSRMLS_CACHE_DEFINE()
#endif
ZEND_GET_MODULE(drover)
#endif
