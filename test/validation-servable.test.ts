import t from 'tap'
import { createAccount } from '@nats-io/nkeys'
import { trustAnchorFrom } from '../shared/index.ts'
import { newOperator, UNLIMITED } from '../ops/identities.ts'
import { Servability } from '../services/resolver/servable.ts'
import { accountJwt } from './kit/jwts.ts'

// LOOKUP's judgement of a stored JWT, without a server: what the asking nats-server would refuse is not served.

const now = Math.floor(Date.now() / 1000)
const op = await newOperator('OP')
const strictOp = await newOperator('STRICT', { strict: true })
const other = await newOperator('OTHER')
const kp = createAccount()
const id = kp.getPublicKey()
const stored = (jwt: string, exp = 0) => ({ id, jwt, iat: now, exp })

t.test('a stored JWT is served only when the asking server will use it', async (t) => {
  const check = new Servability(trustAnchorFrom(op.jwt))
  const cases: Array<[string, ReturnType<typeof stored>, boolean, string?]> = [
    ['signed by an operator signing key', stored(accountJwt(op.signingKp, id)), true],
    ['signed by the operator identity', stored(accountJwt(op.kp, id)), true],
    ['signed by another operator', stored(accountJwt(other.signingKp, id)), false],
    ['self-signed', stored(accountJwt(kp, id)), false],
    ['for another account', stored(accountJwt(op.signingKp, createAccount().getPublicKey())), false],
    ['asked for under another id', stored(accountJwt(op.signingKp, id)), false, createAccount().getPublicKey()],
    ['expired', stored(accountJwt(op.signingKp, id, {}, { exp: now - 5 }), now - 5), false],
    ['not yet valid', stored(accountJwt(op.signingKp, id, {}, { nbf: now + 3600 })), false],
    ['valid from a moment ago', stored(accountJwt(op.signingKp, id, {}, { nbf: now - 5 })), true],
    ['not a JWT', stored('garbage'), false],
    ['over 1 MiB', stored(accountJwt(op.signingKp, id, { description: 'x'.repeat(1_100_000), limits: { ...UNLIMITED } })), false],
  ]
  for (const [name, acc, want, asked] of cases) t.equal(check.servable(asked ?? id, acc, now), want, name)
  const once = stored(accountJwt(op.signingKp, id))
  t.equal(check.servable(id, once, now), true)
  t.equal(check.servable(id, once, now + 10), true, 'judged once per cached object, time still checked per request')
})

t.test('strict signing-key usage: the operator identity may not sign accounts', async (t) => {
  const check = new Servability(trustAnchorFrom(strictOp.jwt))
  t.equal(check.servable(id, stored(accountJwt(strictOp.kp, id)), now), false)
  t.equal(check.servable(id, stored(accountJwt(strictOp.signingKp, id)), now), true)
})

t.test('without a trusted operator configured, trust is not judged', async (t) => {
  const check = new Servability(undefined)
  t.equal(check.servable(id, stored(accountJwt(other.signingKp, id)), now), true)
  t.equal(check.servable(id, stored(accountJwt(kp, id)), now), false, 'self-signed is never used')
  t.equal(check.unservableCount, 0)
})
