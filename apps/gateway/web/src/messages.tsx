/** What the last action did (announced politely) and what went wrong (announced at once). */
export function Messages({
  status,
  error,
}: {
  status: string | undefined;
  error: string | undefined;
}) {
  return (
    <>
      <p class="status" role="status">
        {status}
      </p>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
    </>
  );
}
