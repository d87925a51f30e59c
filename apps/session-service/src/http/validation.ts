import { BadRequestException, StandardSchemaValidationPipe } from '@nestjs/common';

/**
 * Validates every parameter that declares a schema; a failure is a 400 that names each field:
 * `{ error: 'invalid_request', error_description, fields: [{ field, message }] }`.
 */
export function validationPipe(): StandardSchemaValidationPipe {
  return new StandardSchemaValidationPipe({
    exceptionFactory: (issues) => {
      const fields = issues.map((issue) => ({
        field:
          (issue.path ?? [])
            .map((p) => (typeof p === 'object' ? String(p.key) : String(p)))
            .join('.') || '(body)',
        message: issue.message,
      }));
      return new BadRequestException({
        error: 'invalid_request',
        error_description: fields.map((f) => `${f.field}: ${f.message}`).join('; '),
        fields,
      });
    },
  });
}
