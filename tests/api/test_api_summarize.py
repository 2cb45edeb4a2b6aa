"""POST /api/v1/summarize (one document, sync) and /api/v1/summarize/batch (uploaded files, a job)."""

NOTICE = ("关于推进公共数据开放的通知\n一、市数据局负责于2025年6月30日前完成公共数据目录编制。\n"
          "二、各区政府负责在2025年9月底前完成数据归集。\n示范市人民政府办公厅\n2025年3月18日")


def test_summarize_one_document(api):
    r = api.client.post("/api/v1/summarize", headers=api.h("reader"),
                        json={"text": NOTICE, "title": "通知", "style": "brief"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["ai_generated"] is True and body["style"] == "brief" and body["summary"]["text"]
    assert api.client.post("/api/v1/summarize", headers=api.h("reader"),
                           json={"text": NOTICE, "style": "poem"}).status_code == 422
    assert api.client.post("/api/v1/summarize", json={"text": NOTICE}).status_code == 401


def test_summarize_batch_is_a_job_with_per_document_results(api):
    files = [("files", ("通知.txt", NOTICE.encode("utf-8"), "text/plain")),
             ("files", ("空.txt", b"", "text/plain"))]
    r = api.client.post("/api/v1/summarize/batch", headers=api.h("reader"), files=files, data={"style": "brief"})
    assert r.status_code == 202, r.text
    job = api.wait_job(r.json()["job_id"], who="reader")
    assert job["state"] == "done", job
    by_source = {row["source"]: row for row in job["results"]}
    assert by_source["通知.txt"]["status"] == "ok" and by_source["通知.txt"]["summary"]["text"]
    assert by_source["空.txt"]["status"] == "failed" and by_source["空.txt"]["message"]
