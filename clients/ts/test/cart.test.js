// The TypeScript client against running services: authsvc at
// TOKENCART_AUTH_ADDR and catalogsvc replicas at TOKENCART_CATALOG_ADDRS
// (host:port, comma-separated, at least two). e2e/tsclient_test.go starts
// them and runs this file with `node --test`.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { test } from "node:test";

import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { BinaryReader } from "@bufbuild/protobuf/wire";

import { AuthService } from "../gen/tokencart/auth/v1/auth_pb.js";
import { CartService } from "../gen/tokencart/catalog/v1/cart_pb.js";
import { CatalogService } from "../gen/tokencart/catalog/v1/catalog_pb.js";

const authAddr = process.env.TOKENCART_AUTH_ADDR;
const catalogAddrs = (process.env.TOKENCART_CATALOG_ADDRS ?? "").split(",").filter(Boolean);

function transport(addr) {
  return createGrpcTransport({ baseUrl: `http://${addr}`, defaultTimeoutMs: 10_000 });
}

function bearer(token) {
  return { headers: { authorization: `Bearer ${token}` } };
}

test("register, log in, refresh, and a cart across two replicas", async (t) => {
  assert.ok(authAddr, "TOKENCART_AUTH_ADDR is not set");
  assert.ok(catalogAddrs.length >= 2, "TOKENCART_CATALOG_ADDRS needs two replicas");

  const auth = createClient(AuthService, transport(authAddr));
  const email = `ts-${randomUUID()}@example.com`;
  const password = "correct horse battery";

  const registered = await auth.register({ email, password });
  assert.equal(registered.user?.email, email);
  assert.deepEqual(registered.user?.roles, ["customer"]);

  const login = await auth.login({ email, password });
  assert.ok(login.accessToken, "no access token");
  assert.ok(login.refreshToken, "no refresh token");

  const refreshed = await auth.refreshToken({ refreshToken: login.refreshToken });
  assert.ok(refreshed.accessToken, "no access token from refresh");
  assert.notEqual(refreshed.refreshToken, login.refreshToken, "the refresh token was not replaced");
  // The cart calls use the refreshed access token.
  const token = refreshed.accessToken;

  const [first, second] = catalogAddrs.map((addr) => ({
    catalog: createClient(CatalogService, transport(addr)),
    cart: createClient(CartService, transport(addr)),
  }));
  const listed = await first.catalog.listProducts({ pageSize: 2 });
  assert.ok(listed.products.length >= 1, "the catalog is empty");
  const product = listed.products[0];

  const added = await first.cart.addItem(
    { productId: product.id, quantity: 2n, requestId: randomUUID() },
    bearer(token),
  );
  assert.equal(added.cart?.totalQuantity, 2n);

  // Another replica reads the cart written through the first; in the
  // request-carried cart mode the cart travels in cartState.
  const read = await second.cart.getCart({ cartState: added.cartState }, bearer(token));
  assert.equal(read.cart?.lines.length, 1);
  assert.equal(read.cart?.lines[0].productId, product.id);
  assert.equal(read.cart?.lines[0].quantity, 2n);
  assert.equal(read.cart?.version, added.cart?.version);

  await t.test("a bad quantity is INVALID_ARGUMENT with ErrorInfo and BadRequest details", async () => {
    const err = await second.cart
      .addItem({ productId: product.id, quantity: -1n, cartState: read.cartState }, bearer(token))
      .then(
        () => assert.fail("AddItem with quantity -1 succeeded"),
        (e) => ConnectError.from(e),
      );
    assert.equal(err.code, Code.InvalidArgument, `got ${err.message}`);
    assert.match(err.rawMessage, /quantity/);
    // The details arrive undecoded (this client has no google.rpc stubs);
    // protobuf-es's wire reader reads the two messages' fields.
    const detail = (type) => err.details.find((d) => d.type === type)?.value;
    const info = detail("google.rpc.ErrorInfo");
    assert.ok(info, `no google.rpc.ErrorInfo in ${JSON.stringify(err.details.map((d) => d.type))}`);
    const { 1: reason, 2: domain } = stringFields(info);
    assert.equal(domain, "tokencart.dev");
    assert.equal(reason, "FIELD_INVALID");
    const badRequest = detail("google.rpc.BadRequest");
    assert.ok(badRequest, "no google.rpc.BadRequest detail");
    const violations = messages(badRequest, 1).map(stringFields);
    assert.deepEqual(
      violations.map((v) => v[1]),
      ["quantity"],
      "field violations name the quantity",
    );
    assert.ok(violations[0][2], "the violation has a description");
  });

  await t.test("no token is UNAUTHENTICATED", async () => {
    await assert.rejects(second.cart.getCart({}), (err) => {
      assert.equal(ConnectError.from(err).code, Code.Unauthenticated);
      return true;
    });
  });
});

// stringFields returns a message's string fields by field number (the
// fields of google.rpc.ErrorInfo and FieldViolation read here are strings).
function stringFields(bytes) {
  const fields = {};
  const reader = new BinaryReader(bytes);
  while (reader.pos < reader.len) {
    const [no, wireType] = reader.tag();
    if (wireType === 2 && no !== 3) {
      fields[no] = reader.string();
    } else {
      reader.skip(wireType);
    }
  }
  return fields;
}

// messages returns the encoded sub-messages in field number no.
function messages(bytes, no) {
  const out = [];
  const reader = new BinaryReader(bytes);
  while (reader.pos < reader.len) {
    const [n, wireType] = reader.tag();
    if (n === no && wireType === 2) {
      out.push(reader.bytes());
    } else {
      reader.skip(wireType);
    }
  }
  return out;
}
