// Binding a gRPC server (OTLP/gRPC ingest, the Jaeger remote storage) and
// stopping it: in-flight calls finish, and after a grace period the rest
// are cut.
import * as grpc from '@grpc/grpc-js';

export interface ListeningGrpcServer {
  /** host:port it listens on (the port it got when asked for 0). */
  address: string;
  close(): Promise<void>;
}

export async function listenGrpc(server: grpc.Server, host: string, port: number): Promise<ListeningGrpcServer> {
  const bound = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${host}:${port}`, grpc.ServerCredentials.createInsecure(), (error, boundPort) =>
      error ? reject(error) : resolve(boundPort),
    ),
  );
  return {
    address: `${host.includes(':') ? `[${host}]` : host}:${bound}`,
    close: () =>
      new Promise<void>((resolve) => {
        const force = setTimeout(() => server.forceShutdown(), 5_000);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      }),
  };
}
