import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { bearer, errorResponses } from '../http/index.js';
import type { ChecklistService } from './service.js';

const Check = Type.Object({
  id: Type.String(),
  title: Type.String(),
  status: Type.Union([Type.Literal('pass'), Type.Literal('warn'), Type.Literal('fail')]),
  evidence: Type.Array(Type.String()),
  remediation: Type.String(),
  etsi: Type.Array(Type.String()),
});

export const checklistRoutes: FastifyPluginAsyncTypebox<{ checklist: ChecklistService }> = async (app, { checklist }) => {
  app.get(
    '/api/v1/security/checklist',
    {
      config: { auth: { scope: 'audit:read' } },
      schema: {
        tags: ['audit'],
        summary: 'The security checklist evaluated on this deployment now: each check pass, warn or fail, with evidence, remediation and its ETSI EN 303 645 provisions',
        security: bearer,
        response: { 200: Type.Object({ at: Type.Integer(), checks: Type.Array(Check), summary: Type.Object({ pass: Type.Integer(), warn: Type.Integer(), fail: Type.Integer() }) }), ...errorResponses },
      },
    },
    async () => {
      const report = await checklist.run();
      return { ...report, checks: report.checks.map((c) => ({ ...c, evidence: [...c.evidence], etsi: [...c.etsi] })) };
    },
  );
};
