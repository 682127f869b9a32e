/**
 * Names shared by the worker and the code that starts workflows. Kept out of
 * the workflow modules so starters do not import workflow code.
 */

/** The task queue tracegres workers poll unless TEMPORAL_TASK_QUEUE says otherwise. */
export const DEFAULT_TASK_QUEUE = 'tracegres';

/**
 * One bootstrap per organization: the workflow id is derived from the
 * organization id, so a repeated request finds the running workflow instead
 * of starting a second one.
 */
export function organizationBootstrapWorkflowId(organizationId: string): string {
  return `organization-bootstrap-${organizationId}`;
}
