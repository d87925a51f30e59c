/** A paywalled article: anyone sees the teaser, subscribers (a valid session) the body. */
export interface Article {
  id: string;
  title: string;
  teaser: string;
  body: string;
  premium: boolean;
}

/** The demo catalogue: fixed content, so every instance serves the same. */
export const ARTICLES: readonly Article[] = [
  {
    id: 'kafka-in-practice',
    title: 'Kafka in practice: one topic, every instance',
    teaser: 'Why each API instance reads every revocation, and what that costs.',
    body: 'Each instance is the only member of its consumer group, so it is assigned every partition…',
    premium: true,
  },
  {
    id: 'short-lived-tokens',
    title: 'Short-lived tokens are not enough',
    teaser: 'Five minutes is a long time for a stolen token.',
    body: 'A revoked access token stays valid until it expires unless every verifier is told…',
    premium: true,
  },
  {
    id: 'welcome',
    title: 'Welcome',
    teaser: 'What this demo shows.',
    body: 'Sign in on two devices with a one-device plan and watch the first one lose access.',
    premium: false,
  },
];
