/**
 * The workflows a tracegres worker runs; the SDK bundles this file (and what
 * it imports) into the workflow sandbox.
 */
export { organizationBootstrap } from './organization-bootstrap.ts';
