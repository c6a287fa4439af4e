/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Bob Jenkins' lookup3 hash of three 32-bit words, as the kernel's jhash_3words() computes it
 * (include/linux/jhash.h): the Maglev flow hash. src/datapath/flow-hash.ts is the same function
 * in TypeScript, so the agent and tests can tell which table entry a flow lands on.
 */
#ifndef CILIUM_TS_JHASH_H
#define CILIUM_TS_JHASH_H

#include "lib/common.h"

#define JHASH_INITVAL 0xdeadbeef

static __always_inline __u32 jhash_rol32(__u32 w, int s)
{
	return (w << s) | (w >> (32 - s));
}

static __always_inline __u32 jhash_3words(__u32 a, __u32 b, __u32 c, __u32 initval)
{
	/* lookup3's final mix over a, b, c after the length (3 words = 12 bytes) and seed are added */
	initval += JHASH_INITVAL + (3 << 2);
	a += initval;
	b += initval;
	c += initval;
	c ^= b;
	c -= jhash_rol32(b, 14);
	a ^= c;
	a -= jhash_rol32(c, 11);
	b ^= a;
	b -= jhash_rol32(a, 25);
	c ^= b;
	c -= jhash_rol32(b, 16);
	a ^= c;
	a -= jhash_rol32(c, 4);
	b ^= a;
	b -= jhash_rol32(a, 14);
	c ^= b;
	c -= jhash_rol32(b, 24);
	return c;
}

#endif
