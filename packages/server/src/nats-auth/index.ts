export { type AccountPushTarget, pushAccountJwt } from './account-push.js';
export { type IssuedUser, type IssuerKeys, NatsIssuer, type UserRequest } from './issuer.js';
export { OPERATOR_FILES, type OperatorSetup, type WrittenOperator, accountClaims, createOperatorSetup, serverConfigSnippet, writeOperatorSetup } from './operator.js';
export { type ApplicationNatsAccess, type ConsumerGrant, type SchemaGrant, applicationNatsAccess, consumerName } from './permissions.js';
