import type { VerifiedSession } from '@app/revocation-guard';
import { CurrentSession, Public, Roles } from '@app/revocation-guard/nest';
import { Controller, Get, NotFoundException, Param } from '@nestjs/common';
import { ARTICLES, type Article } from './articles';

const teaserOf = ({ id, title, teaser, premium }: Article) => ({ id, title, teaser, premium });

@Controller('articles')
export class ArticlesController {
  /** The catalogue's teasers: public. */
  @Public()
  @Get()
  list() {
    return { articles: ARTICLES.map(teaserOf) };
  }

  /** A whole article: needs a live session (the paywall). */
  @Get(':id')
  read(@Param('id') id: string, @CurrentSession() session: VerifiedSession) {
    const article = ARTICLES.find((candidate) => candidate.id === id);
    if (!article)
      throw new NotFoundException({ error: 'not_found', error_description: 'no such article' });
    return { ...article, read_by: session.sub };
  }

  /** Editors' view of the catalogue: admin role only (403 otherwise). */
  @Roles('admin')
  @Get(':id/stats')
  stats(@Param('id') id: string) {
    const article = ARTICLES.find((candidate) => candidate.id === id);
    if (!article)
      throw new NotFoundException({ error: 'not_found', error_description: 'no such article' });
    return { id, premium: article.premium, words: article.body.split(/\s+/).length };
  }
}
