import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { Resolver } from 'node:dns/promises';
import net from 'node:net';
import { test } from 'node:test';
import type { DecodedPacket, Packet, TestContext } from './dns-test-types.ts';
