import type { IncomingMessage, ServerResponse } from 'node:http';

/** An event action: `[a-z0-9_:]{1,64}` (docs/events.md lists Kevlar's own). */
export type Action = string;

export interface ReportDetails {
  user?: string;
  outcome?: 'success' | 'failure';
  message?: string;
  /** Where Kevlar's notices to this user go (`Kevlar-User-Email`). */
  email?: string;
}

/** Adds one `Kevlar-Event` header to the answer (Kevlar reads and removes it). */
export function report<R extends ServerResponse>(res: R, action: Action, details?: ReportDetails): R;
export function loginSucceeded<R extends ServerResponse>(res: R, user: string, options?: { email?: string }): R;
export function loginFailed<R extends ServerResponse>(res: R, user: string): R;

export interface KevlarRequestInfo {
  /** The password in this login attempt is in Kevlar's breached-password index. */
  breached: boolean;
  breachedCount: '1+' | '100+' | null;
  /** Kevlar's request id, also on its own pages and in its events. */
  requestId: string | null;
}

export function read(req: IncomingMessage): KevlarRequestInfo;
export function middleware(): (req: IncomingMessage & { kevlar?: KevlarRequestInfo }, res: ServerResponse, next: () => void) => void;

export interface AppEvent {
  action: Action;
  category?: 'authentication' | 'iam' | 'web' | 'process' | 'configuration' | 'intrusion_detection' | 'vulnerability';
  outcome?: 'success' | 'failure' | 'unknown';
  severity?: 1 | 2 | 3 | 4 | 5;
  message?: string;
  user?: string;
  ip?: string;
  details?: Record<string, unknown>;
}

export function send(event: AppEvent, options?: { url?: string; token?: string }): Promise<Record<string, unknown>>;

declare global {
  namespace Express {
    interface Request {
      kevlar?: KevlarRequestInfo;
    }
  }
}
